// Known-answer tests for DUKPT (dukpt.hpp) against /work/shared/test-vectors.md §1 and §2:
// ANSI X9.24-1:2009 A.4 (TDES; full initial and rollover sequences as published in OE-DUKPT
// test/dukpt_tdes_test.c, also repeated by jPOS), the ANSI X9.24-3:2017 supplement (AES-128
// and AES-256 BDK; OE-DUKPT dukpt_aes128_test.c / dukpt_aes256_test.c) and the moov-io/dukpt
// message-level vectors. Every value is a public test vector or derived from one.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eftd/core/block_cipher.hpp"
#include "eftd/core/crypto.hpp"
#include "eftd/core/dukpt.hpp"
#include "eftd/core/mac.hpp"
#include "eftd/core/pin_block.hpp"

using namespace eftd;

namespace {

bytes hex(std::string_view h) {
  auto b = from_hex(h);
  REQUIRE(b.has_value());
  return *b;
}

std::string hx(byte_view b) {
  return to_hex(b);
}

// X9.24-1 A.4 inputs.
const char* const tdes_bdk = "0123456789ABCDEFFEDCBA9876543210";
const char* const tdes_initial_ksn = "FFFF9876543210E00000";
const char* const tdes_ipek = "6AC292FAA1315B4D858AB3A3D7D5933A";
const char* const tdes_clear_pin_block = "041274EDCBA9876F";  // ISO 0, PIN 1234, PAN 4012345678909
constexpr std::string_view message = "4012345678909D987";     // MAC and data test message

struct tdes_row {
  const char* ksn;
  const char* transaction_key;
  const char* encrypted_pin_block;
  const char* mac_request;   // X9.19, 4 bytes
  const char* mac_response;  // X9.19, 4 bytes
  const char* cmac_request;  // TDES-CMAC under the MAC request key ("hand crafted" in OE-DUKPT)
  const char* cmac_response;
  const char* data_request;  // TDES-CBC, zero IV, message zero-padded to 24 bytes
};

// 21 KSNs of the initial sequence, then the 13 of the rollover sequence (A.4.2 / A.4.3).
constexpr tdes_row tdes_rows[] = {
    {"FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A", "9CCC7817", "20364223",
     "211003F1D5B79DD7", "82CC2B9B9EC710A6", "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F"},
    {"FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107", "F608A9BC", "D1FCA6BE",
     "4BA08A38CEEAF378", "85E93BAC519203AC", "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13"},
    {"FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466", "20B59A4F", "BAD4CC9C",
     "011D64E245203501", "1D64CC655C4ABAEF", "BD751E65F10E75B6C1D5B1D283496A36C2DE21D993C387A7"},
    {"FFFF9876543210E00004", "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7", "C7BFA6CC", "1EB08AEE",
     "293A4DAE35BD9A5B", "F51F47C89C7E0047", "1118F50947441BBDA3C8C70220021A12EC31CC473F7215F4"},
    {"FFFF9876543210E00005", "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327", "0202B963", "5CBE3E81",
     "2E1FC7D330CA6935", "3210F49A556B7635", "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365"},
    {"FFFF9876543210E00006", "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8", "CF6C72E6", "C60D38E8",
     "2172CAD92D8E2643", "1262CCAA534C5CA2", "DC526613AD9095C1CEC60C41B7686ED606AC1AA2F4F54912"},
    {"FFFF9876543210E00007", "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E", "B11EB0D9", "053EFD39",
     "CD19DFD6765E2671", "FA55CEFF48FFB95D", "24700BD6F17751531F2A16CE2AF7731101E6F87839C67244"},
    {"FFFF9876543210E00008", "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551", "3679055B", "7FACA91D",
     "EC08F36B4C4D3564", "A7F5F5FF0CF24BAE", "5F6584DEAFC51B48A239B51C2DACA97176C01D9CA8EDC33C"},
    {"FFFF9876543210E00009", "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D", "26AA23DC", "37F17B8F",
     "E62D342E24AAC2FC", "C36ECC58DC74A17E", "7CB9080923ED4D7D8D1B8A2849331684CC910522023BE537"},
    {"FFFF9876543210E0000A", "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE", "1632621C", "CE038CC9",
     "6B2D74E69A28ED7B", "8A7D022E0AF9FF26", "C221F5A8CA5DA909BE04938E0FB8DFCFB30ED0D62B590663"},
    {"FFFF9876543210E0000B", "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA", "76D95CB4", "27C9FA5E",
     "491ED0E8FD692995", "599E8CD08EE3A2C6", "98A271C13E4AEE80C6343867F2F0F6C55E8B7E5645866A0B"},
    {"FFFF9876543210E0000C", "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286", "BAD9D84D", "6D2ECC6A",
     "0A169718B2EE9C9C", "43EA8F371652CB41", "273CBE2F275B1C29D53F3C01A24DEC73F92C3BE219FFCB91"},
    {"FFFF9876543210E0000D", "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68", "AAAFB598", "7E40B492",
     "1AB755B04273E8DC", "4E4F5A88BB2887E0", "7290CB9D6F6E35A9B8A34C590A93696F8FE0137A8558884C"},
    {"FFFF9876543210E0000E", "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950", "4EC79532", "55233989",
     "6B713E41C3C68719", "3678CAF221A0FCC6", "48207931E5F6E5E3E02E7E1D7BED4E3232FCA67E66A31F61"},
    {"FFFF9876543210E0000F", "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A", "82500D05", "AFE23CBA",
     "CB7194BDEF5484C7", "515FA5818568DB32", "166246602B1255114A4012513B0DD4A9E19E82C945860C55"},
    {"FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6", "D39D3A59", "9E933C88",
     "02E5C57C3BE193AC", "E66012C67D26DE0E", "53EDA44BDBCA037B2D3FEAEBAF73499336767BD1D0D09679"},
    {"FFFF9876543210E00011", "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863", "F094AF93", "631E7B39",
     "468D652ACE1B0FE2", "BB6437026AC0A53D", "086F3F46238B99AFB35DA42029675EE1FAB1C606307B35FB"},
    {"FFFF9876543210E00012", "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D", "A819AF04", "E93F5E27",
     "22A2F38B63B903F7", "82E87BC1DBA843E2", "270439430E60BFC600FE3DC7E7AD8C72D22D5284EC676EF2"},
    {"FFFF9876543210E00013", "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60", "79285A17", "FCE7A5A5",
     "4C751416E655769C", "F598CACCCC066945", "2FEAE132FA0E46B4ABF55A87477AFA907E598868BCC236DA"},
    {"FFFF9876543210E00014", "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56", "E2B2637F", "A10E94AA",
     "B9468A938E200B13", "7329404F8509EEC1", "A16A61328E36A21858B5FBFBE7BAF7985F5C54F5B8C12298"},
    {"FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6", "B2033EBD", "BDA3AEE1",
     "F738E1BDB61538C8", "40BD2F3386FE2CE6", "42A9342FD5C1ACD20E137950A7368D2BBE884275B7906918"},
    {"FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35", "23E3CB62", "5776C376",
     "863293575AA468D7", "8E70A73A61185B55", "5FF8C648565975E746C0CB7B1157DCB6EC3C5F25E82F8A62"},
    {"FFFF9876543210EFF801", "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D", "97623632", "69D1EF47",
     "9FC97AEB6623500D", "1A0BC04A517375FB", "55374FDBB3B2B4ED0751243FC0C54DB1F3F3CF76F0C0B3C4"},
    {"FFFF9876543210EFF802", "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F", "72608521", "BF7036B7",
     "FD1FDB89F6BBE6E2", "FA9521FEFE2C4A46", "74A1250E3234DEDEB422FA7F862C484BBA6924DF9BC32CE5"},
    {"FFFF9876543210EFF804", "35A168695B3BA83307E871C42021DD37", "BA83243305712099", "D86687B7", "645A0A18",
     "193EA8355FBCC1B7", "E3BFA1458E75DD35", "159E9FA8E979A9C76C118C7BE9E5D436AC0B22CD098BAE1F"},
    {"FFFF9876543210EFF808", "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85", "5E00713D", "E8D8026A",
     "0133FCF11E332FAE", "AA726F3F63E800A7", "F87F61877DFF1CD39A635BEA4D15F81D30793B9157805BE4"},
    {"FFFF9876543210EFF810", "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA", "1BCCF968", "9623FF45",
     "5EE7C5E80F1E7D40", "1BFAC9BBBCC19AE9", "4DEA2DDA8D079F8040CAD885C29A4037E9490480256D074D"},
    {"FFFF9876543210EFF820", "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6", "2F6D2191", "FF864D19",
     "01847D97445DDEBE", "30E769C7EA0A3B09", "CE625FFBBB339C8305FA86CBFD192F4292B29962649947DD"},
    {"FFFF9876543210EFF840", "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C", "4DA4CBAC", "3CE7AD50",
     "2A2020B7F9753FA7", "08BF524BD1A7F45F", "29DDF3F2C3B9BE76A8338E2B22BA668B68B46AAE9C714607"},
    {"FFFF9876543210EFF880", "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981", "95C43BC2", "73D03F0B",
     "CD5561C8FD29A6F7", "FA443C7457AD3066", "9E9AA50594849DEB63BC3EF3BE63C5637F03D03B0DCFA973"},
    {"FFFF9876543210EFF900", "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430", "D6BEAA71", "5D461B71",
     "D9270E022F9A8C4A", "CB3C15FCE7591682", "C653AFCD3245ADB3B113FFC48B46BD0B6C5B3B5FB10044EE"},
    {"FFFF9876543210EFFA00", "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF", "93930C9F", "531DA5F9",
     "4954EFE9E3125B2D", "2A5AE1B2D2BDE612", "50EB117D8CB2BE5ADBBE98B6570C557C13622688A61D559D"},
    {"FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71", "2917C6EF", "AA8D2DA6",
     "83562314178518ED", "228289A6467F6E8D", "A2C773BC45B277E3F100C37E30A6A6FB1865134815B05EBC"},
    {"FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E", "7DFA9315", "1444BEC3",
     "59B80A1E671114F3", "30B60912D34F1348", "1E830E7F53FC171E35380145320233EF9C6F3B08CED984AB"},
};

// X9.24-3 supplement inputs.
const char* const aes_bdk128 = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
const char* const aes_bdk256 = "FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1";
const char* const aes_ikid = "1234567890123456";
const char* const aes_ik128 = "1273671EA26AC29AFA4D1084127652A1";
const char* const aes_ik256 = "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F";
// Format 4 PIN field with the supplement's fixed random half, and its PAN.
const char* const aes_pin_field = "441234AAAAAAAAAA2F69ADDE2E9E7ACE";
const char* const aes_pan = "4111111111111111";

bytes aes_ksn(const char* counter) {
  return hex(std::string(aes_ikid) + counter);
}

struct aes128_row {
  const char* counter;
  const char* transaction_key;
  const char* pin_key;   // AES-128, usage 1000
  const char* mac_key;   // AES-128, usage 2000
  const char* data_key;  // AES-128, usage 3000
  const char* encrypted_pin_block;
};

constexpr aes128_row aes128_rows[] = {
    {"00000001", "4F21B565BAD9835E112B6465635EAE44", "AF8CB133A78F8DC2D1359F18527593FB",
     "A2DC23DE6FDE0824A2BC321E08E4B8B7", "A35C412EFD41FDB98B69797C02DCD08F",
     "A912150391AB65A67E52883D81CE2D15"},
    {"00000002", "2F34D68DE10F68D38091A73B9E7C437C", "D30BDC73EC9714B000BEC66BDB7B6D09",
     "484C3B06E8562704528CD5B46FB12FB6", "D639514AA33AC43AD9229E433D6D4E5B",
     "52A00503BD34BA1383F6A7EE9FE2547F"},
    {"00000003", "031504E530365CF81264238540518318", "7D69F01F3B45449F62C7816ECE723268",
     "A5DF7D9D800CA769766F0C77CA4E6E6C", "EF17F6AB45B4820C93A3DCB21BC491AD",
     "A5A27E82B43A9A866A93D7ABE89CEF93"},
    {"00000004", "0EEFC7ADA628BA68878DA9165A8A1887", "91A0588318EC2673214271F70137896E",
     "E6E4679647D8A9057C1FC15537CB4C4E", "B3BD44C08BB6BA27C3BB4711D7D70387",
     "71B3D0528669498777555A8BE6698E44"},
    {"00000005", "C2A7AC328A5DA2D6002D62465BFC028B", "35A43BC9EFEB09C756204B57E3FB7D4D",
     "0588185FE1FF8C7E22FAD78C1C61F065", "CA02DF6F30B39E14BD0B4A30E460920F",
     "881A7F77A2E04E5BEA985E342FD0B628"},
    {"00000006", "D30F7D9351DA58448A2F5E92B4EE3B7D", "02DCC6CD1201A3A2CA7099559C862123",
     "7B60F72A5639C0EE7EB2100FA80BB793", "C9B8A7C4E486180B2229115164F0B293",
     "BDC1C3871AFB0B340AA5B5CEFD08695E"},
    {"00000007", "A8253CEED9AC042C54F75D35C8352278", "6ECF912F3B18CA11A7A27BB60705FD09",
     "BAA08CA263C69525BC6B1BA8F4275D69", "0FA8F1F0A2DD7B1005A862D77CDED698",
     "4A8E6B8C7DBEE6CBA6DC774F0CB83396"},
    {"00000008", "718EE6CF0B27E53D5F7AF99C4D8146A2", "4D9DF3FBEE3448FC3E676D04320A90F5",
     "6FD572E5D59E618875F193484F9178FB", "650F34204ABD4E57764D61AC3D266FB1",
     "8308BB857C17F390369F761F8EB358FA"},
};

struct aes256_row {
  const char* counter;
  const char* transaction_key;
  const char* pin_key128;
  const char* mac_key128;
  const char* data_key128;
  const char* pin_key256;
  const char* mac_key256;
  const char* data_key256;
};

constexpr aes256_row aes256_rows[] = {
    {"00000001", "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3",
     "09C9C432966811D6B2C3336BAC1B1202", "F04A1FABD4176E15490CEC82E217A96D",
     "616D59AE91F8CC7016F89FDA29605FA4", "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502",
     "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549",
     "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58"},
    {"00000002", "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97",
     "D632226A80795D13A80AFE66A3E97B01", "DD99D77B4E2AB538B26BB6A8B3FB0BE3",
     "07B79D9BFF3633C07A9FDDF132070B30", "3583D6CD02FC38822CC71A8D7678E04F4A8556335E6CC66863D3DADC5AEE2C62",
     "4417356219B2F93CE3F2671623DDCAB58A8B85AD80662A8D628024000956D426",
     "D0AC9F71F875FFFF3A83778F72F39EBB0924A5A526617AF669665E0A19725465"},
    {"00000003", "8EEEF7C464AE415BB1D73FAED21993CD669F7999092A579EC6DD3CC680C65171",
     "C2CBD3D766B16F9F82F4EE3F74478918", "5A742A4A0403B3D7BB30842DAFBB5972",
     "706E4E629E466BED956548E7B0D90C3D", "96A1AB5D37CB7CF81DDE64F66C46E0389B833E7AD5F4E44C791F04FAFDA6DA0E",
     "35BD00A46F2A2BD127F565FBF2974B735AE3BB70242C0A415857CF69B2C2691A",
     "8E70D5DF53F48ED2F2A0B54FC4F45C844579BE96F6F161222CDD50193E2F737F"},
    {"00000004", "C18CBED570B3B89ECADA7CEC9C224CD5A86ECF3DE377D3EFAB720F8C4D76B9D0",
     "58A3779C1E24B3EDAF068609E7E56D59", "C531F7E08514858C445D5F54BFE7DA8E",
     "CF3A4D9CA7E962E4023A84A2FE47DC80", "420AA584BF215C4777E93009B56D08DE80687021D07ED96349FF71379CE5636D",
     "D80617C3C5869A8DCF0DA5383D032A0D6E6C51C0BF649BE992BE84AA191AE326",
     "41D23F7D78E22A978D726BC71D266374263120EE49146CE5C1291FD0EE7DDD31"},
    {"00000005", "6B3C3C93307151C25DC2309456F01C5C3108DAD571C321899A9B7E0C009FD2EB",
     "97504C8BB0FD4D4A88D605143BF00025", "E2E25AA7FE6E5DD6042C632A5DFED945",
     "94C28455AEAD970555F326298557FA81", "B1E9E3D918952E6E5F67917F0FE77060F865AE27DCAD5742DDF90F61453B98BA",
     "8B047E32C476C0A0AF90A9B8D1C247C433E3D4C1DF1C7FC52E8CB1DC4C8FB275",
     "813D156C142E5BB8F136427EBD0A1AC4DC9B2B5963C481F5E0A58F4BF33BD185"},
    {"00000006", "B8BB61AE3E2D5CD8C699E0C578FB2C7B89B0C0CF02DBAB60864D8049C986C844",
     "BF281141609E6CAE7DF10DFA47A8D03D", "07B215929C5DB4262DECEE4A0336DD4F",
     "408D3B9A7D1AF109E2F689514BF79AC7", "8714EB94E3BFD3018EC99D0434D9C94F071AF2EEBF4332FB14F5179793AA582C",
     "A2FF6FFB37CB8042B8C9B2F94C90C83D94DD5BECCD9951CFAB0BE7BD865CA403",
     "F1FB0591AA2E45E1CE4C5D970C7396C4A87E53E5900C4A6D95C174140CC0AC9C"},
    {"00000007", "88D0ACA287B3066F5DE0C93396337D4C2DA8D92C1F720A576D62CEB4C979E01E",
     "B7C6BB187134E9D429C3E8B7CCBD8477", "3AC9CC5159F96E10FCC5EB64015AC76A",
     "DC2915BF421D617E7725E63A7DACB18D", "693C893A1E81D280302E0A47E7E634337B9A9B26E7CC6064D807E08FF911AFAC",
     "E8A57085DBE804B8C2767F9F77D54854861E99633A062C700B4E50A865153150",
     "69BC5C9AFB2C93CC30C3F7529360B34D7B64B7206E0F0940D8654378C54824F2"},
    {"00000008", "20A796D5077D51B8E7613893A4F095B134E02917DC84BD391F3661D0873FF308",
     "53C1C60A65532313141A102AD720E967", "6E94A9283EA9AEB7EAA77C3FF55FF2D1",
     "8950DD50C254C60E26737CA9229F0F18", "173A45284262A3E292D86D08FD6DE9167963214450D1D48F6103BD2EB08E61B5",
     "949A3FEF12DBD273DD25BB60E29BBE313C872A9DE3BE03A7E29626ACA0A42880",
     "0BF8789A21D068410A16C9F7FCBF65A7B4FF73203ADC0F1B4B5E5BF8050E4284"},
};

struct counter_key {
  const char* counter;
  const char* transaction_key;
};

// Large counters, transaction keys only (counter 0001FFFF is the negative case below).
constexpr counter_key aes128_large[] = {
    {"0001FFFE", "E21E8C8D347F8561A2BE752DAA85A111"}, {"00020000", "F7AE9025468A25D37B7249CFFED224C8"},
    {"00020001", "692C8EA4013645135B36497131DF9D2C"}, {"FFFE2000", "48E585B694EB0B18D5C35443E163C0BA"},
    {"FFFE4000", "396C2C7CA1EA701C03B86B7D41F0C562"}, {"FFFE8000", "0387625F189B58AE03EF0E8CCA41105E"},
    {"FFFF0000", "F6BA59389BD14A9855BE9727E7C52E3C"},
};

constexpr counter_key aes256_large[] = {
    {"0001FFFE", "A289508CBF1228452CD86AB77B15CB35577AC828C18BB66681E5A16D6C9CCED3"},
    {"00020000", "D62DDA94A47D7DA5D763443B4ECB15EA8DD62E0E4F915958BA459591F8312E37"},
    {"00020001", "44110A1102748D4A3AC326F53D8CAC650212590CA7126D54546DDE0F20E89CEE"},
    {"FFFE2000", "4625EB06E4886D4AFCC9AE37ED4F4E4E1653C9E60E3F24742A87A26AA96AB7A6"},
    {"FFFE4000", "FF20E1BB575539ACCB44E3111BE8757F83AE8549A2DD71B441A4A424F7FFD4B1"},
    {"FFFE8000", "630535C9C53E1EC6524016930B56F6728909C45403536B419AEBCB25B7351C07"},
    {"FFFF0000", "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE"},
};

}  // namespace

TEST_CASE("TDES DUKPT IPEK matches X9.24-1 A.4", "[dukpt]") {
  auto ik = tdes_dukpt::ipek(hex(tdes_bdk), hex(tdes_initial_ksn));
  REQUIRE(ik);
  CHECK(hx(ik->view()) == tdes_ipek);
  // The counter bits of a later KSN do not change the IPEK.
  auto again = tdes_dukpt::ipek(hex(tdes_bdk), hex("FFFF9876543210EFF802"));
  REQUIRE(again);
  CHECK(*again == *ik);
}

TEST_CASE("TDES DUKPT keys, PIN blocks, MACs and data match X9.24-1 A.4 for all 34 KSNs", "[dukpt]") {
  const auto ipek = hex(tdes_ipek);
  const auto clear = hex(tdes_clear_pin_block);
  const auto msg = as_bytes(message);
  for (const auto& row : tdes_rows) {
    INFO("KSN " << row.ksn);
    const auto ksn = hex(row.ksn);
    auto k = tdes_dukpt::derive(ipek, ksn);
    REQUIRE(k);
    CHECK(hx(k->transaction.view()) == row.transaction_key);

    auto enc = tdes_ecb(cipher_op::encrypt, k->pin.view(), clear);
    REQUIRE(enc);
    CHECK(hx(enc->view()) == row.encrypted_pin_block);
    auto dec = tdes_ecb(cipher_op::decrypt, k->pin.view(), hex(row.encrypted_pin_block));
    REQUIRE(dec);
    CHECK(hx(dec->view()) == tdes_clear_pin_block);

    auto req = tdes_dukpt::mac(k->mac_request.view(), msg);
    auto resp = tdes_dukpt::mac(k->mac_response.view(), msg);
    REQUIRE(req);
    REQUIRE(resp);
    CHECK(hx(*req) == row.mac_request);
    CHECK(hx(*resp) == row.mac_response);

    auto creq = cmac_tdes(k->mac_request.view(), msg);
    auto cresp = cmac_tdes(k->mac_response.view(), msg);
    REQUIRE(creq);
    REQUIRE(cresp);
    CHECK(hx(*creq) == row.cmac_request);
    CHECK(hx(*cresp) == row.cmac_response);

    auto data = tdes_dukpt::encrypt_data(k->data_request.view(), msg);
    REQUIRE(data);
    CHECK(hx(*data) == row.data_request);
    auto plain = tdes_dukpt::decrypt_data(k->data_request.view(), *data);
    REQUIRE(plain);
    CHECK(hx(plain->view()) == hx(msg) + "00000000000000");
  }
}

TEST_CASE("TDES DUKPT matches the jPOS KSN 9876543210 00004 00002", "[dukpt]") {
  // jPOS DUKPTTest (test-vectors §1, SOURCE-ONLY there; reproduced here): a KSN without the
  // FFFF prefix, counter 2, same BDK and clear PIN block.
  auto k = tdes_dukpt::derive_from_bdk(hex(tdes_bdk), hex("98765432100000400002"));
  REQUIRE(k);
  auto enc = tdes_ecb(cipher_op::encrypt, k->pin.view(), hex(tdes_clear_pin_block));
  REQUIRE(enc);
  CHECK(hx(enc->view()) == "AEF0F261B1222EB1");
}

TEST_CASE("TDES DUKPT variant keys match the §1 table and the derived counter-1 keys", "[dukpt]") {
  struct row {
    const char* ksn;
    const char* pin_key;
  };
  const std::vector<row> rows = {
      {"FFFF9876543210E00001", "042666B49184CF5C68DE9628D0397B36"},
      {"FFFF9876543210E00002", "C46551CEF9FD244FAA9AD834130D3B38"},
      {"FFFF9876543210E00003", "0DF3D9422ACA561A47676D07AD6BAD05"},
      {"FFFF9876543210E00009", "27E31064FDC565968900E2057F658E81"},
      {"FFFF9876543210E00015", "E161D1956A61F62DF37AFD7F9CC36965"},
      {"FFFF9876543210EFF800", "F9CDFEBF4F5B1D61B3EC12454527E189"},
      {"FFFF9876543210EFF801", "5BEE92627E9782A3911BF619DF72CAC4"},
      {"FFFF9876543210EFF802", "64CA2F8AB93F614F1620B00BF77C73FE"},
      {"FFFF9876543210F00000", "AA4D58DB653EC7B548C75F2F047DD24A"},
  };
  for (const auto& r : rows) {
    INFO("KSN " << r.ksn);
    auto k = tdes_dukpt::derive_from_bdk(hex(tdes_bdk), hex(r.ksn));
    REQUIRE(k);
    CHECK(hx(k->pin.view()) == r.pin_key);
  }
  auto k1 = tdes_dukpt::derive_from_bdk(hex(tdes_bdk), hex("FFFF9876543210E00001"));
  REQUIRE(k1);
  CHECK(hx(k1->data_request.view()) == "448D3F076D8304036A55A3D7E0055A78");
  CHECK(hx(k1->mac_request.view()) == "042666B4918430A368DE9628D03984C9");
  CHECK(hx(k1->mac_response.view()) == "042666B46E84CFA368DE96282F397BC9");
}

TEST_CASE("TDES DUKPT data response key is its own variant with the one-way step", "[dukpt]") {
  // X9.24-1 publishes no data-response vector; check what can be checked: it differs from
  // every other key, encrypts and decrypts, and is the one-way step applied to its variant.
  auto k = tdes_dukpt::derive_from_bdk(hex(tdes_bdk), hex("FFFF9876543210E00001"));
  REQUIRE(k);
  CHECK_FALSE(k->data_response == k->data_request);
  CHECK_FALSE(k->data_response == k->mac_response);
  auto variant = hex("0426664B9184CFA368DE96D7D0397BC9");  // txn key XOR 000000FF00000000 000000FF00000000
  auto expected = tdes_ecb(cipher_op::encrypt, variant, variant);
  REQUIRE(expected);
  CHECK(k->data_response == *expected);
  auto ct = tdes_dukpt::encrypt_data(k->data_response.view(), as_bytes(message));
  REQUIRE(ct);
  auto pt = tdes_dukpt::decrypt_data(k->data_response.view(), *ct);
  REQUIRE(pt);
  CHECK(hx(pt->view().first(message.size())) == hx(as_bytes(message)));
}

TEST_CASE("TDES DUKPT counter rules: 1..0x1FFFFF with at most 10 one-bits", "[dukpt]") {
  auto c = tdes_dukpt::counter(hex("FFFF9876543210EFFC00"));  // 0x0FFC00: exactly 10 one-bits
  REQUIRE(c);
  CHECK(*c == 0x0FFC00);
  c = tdes_dukpt::counter(hex("FFFF9876543210F00000"));  // the counter after 0FFC00
  REQUIRE(c);
  CHECK(*c == 0x100000);
  const auto ipek = hex(tdes_ipek);
  for (const char* bad :
       {"FFFF9876543210E00000", "FFFF9876543210EFFC01", "FFFF9876543210E007FF", "FFFF9876543210FFFFFF"}) {
    INFO("KSN " << bad);
    auto k = tdes_dukpt::derive(ipek, hex(bad));
    REQUIRE_FALSE(k);
    CHECK(k.err().code == "dukpt.bad_counter");
  }
}

TEST_CASE("TDES DUKPT rejects bad lengths", "[dukpt]") {
  const auto ksn = hex("FFFF9876543210E00001");
  auto r1 = tdes_dukpt::ipek(hex("0123456789ABCDEF"), ksn);
  REQUIRE_FALSE(r1);
  CHECK(r1.err().code == "dukpt.bad_key");
  auto r2 = tdes_dukpt::ipek(hex(tdes_bdk), hex("FFFF9876543210E001"));
  REQUIRE_FALSE(r2);
  CHECK(r2.err().code == "dukpt.bad_ksn");
  auto r3 = tdes_dukpt::derive(hex(tdes_ipek), hex("FFFF9876543210E0000100"));
  REQUIRE_FALSE(r3);
  CHECK(r3.err().code == "dukpt.bad_ksn");
  auto r4 = tdes_dukpt::derive(hex("6AC292FAA1315B4D858AB3A3D7D5933A00"), ksn);
  REQUIRE_FALSE(r4);
  CHECK(r4.err().code == "dukpt.bad_key");
  auto k = tdes_dukpt::derive(hex(tdes_ipek), ksn);
  REQUIRE(k);
  auto r5 = tdes_dukpt::decrypt_data(k->data_request.view(), bytes(17, 0));
  REQUIRE_FALSE(r5);
  CHECK(r5.err().code == "dukpt.bad_input");
  auto r6 = tdes_dukpt::mac(bytes(8, 1), as_bytes(message));
  REQUIRE_FALSE(r6);
  CHECK(r6.err().code == "dukpt.bad_key");
  auto r7 = tdes_dukpt::encrypt_data(bytes(24, 1), as_bytes(message));
  REQUIRE_FALSE(r7);
  CHECK(r7.err().code == "dukpt.bad_key");
}

TEST_CASE("AES DUKPT initial keys match the X9.24-3 supplement", "[dukpt]") {
  auto ik = aes_dukpt::initial_key(hex(aes_bdk128), hex(aes_ikid), aes_dukpt::key_type::aes128);
  REQUIRE(ik);
  CHECK(hx(ik->view()) == aes_ik128);
  auto ik256 = aes_dukpt::initial_key(hex(aes_bdk256), hex(aes_ikid), aes_dukpt::key_type::aes256);
  REQUIRE(ik256);
  CHECK(hx(ik256->view()) == aes_ik256);
}

TEST_CASE("AES-128 BDK: transaction, PIN, MAC and data keys and format 4 PIN blocks", "[dukpt]") {
  using aes_dukpt::key_type;
  using aes_dukpt::key_usage;
  const auto ik = hex(aes_ik128);
  for (const auto& row : aes128_rows) {
    INFO("counter " << row.counter);
    const auto ksn = aes_ksn(row.counter);
    auto txn = aes_dukpt::transaction_key(ik, ksn);
    REQUIRE(txn);
    CHECK(hx(txn->view()) == row.transaction_key);
    auto pin_key = aes_dukpt::working_key_from_transaction_key(txn->view(), ksn, key_usage::pin_encryption,
                                                               key_type::aes128);
    auto mac_key = aes_dukpt::working_key(ik, ksn, key_usage::mac_generation, key_type::aes128);
    auto data_key = aes_dukpt::working_key(ik, ksn, key_usage::data_encryption, key_type::aes128);
    REQUIRE(pin_key);
    REQUIRE(mac_key);
    REQUIRE(data_key);
    CHECK(hx(pin_key->view()) == row.pin_key);
    CHECK(hx(mac_key->view()) == row.mac_key);
    CHECK(hx(data_key->view()) == row.data_key);

    auto block = encipher_iso4_field(pin_key->view(), hex(aes_pin_field), aes_pan);
    REQUIRE(block);
    CHECK(hx(*block) == row.encrypted_pin_block);
    auto p = decipher_iso4(pin_key->view(), hex(row.encrypted_pin_block), aes_pan);
    REQUIRE(p);
    CHECK(p->reveal() == "1234");  // public test PIN of the supplement
  }
}

TEST_CASE("AES-256 BDK: transaction keys and AES-128 and AES-256 working keys", "[dukpt]") {
  using aes_dukpt::key_type;
  using aes_dukpt::key_usage;
  const auto ik = hex(aes_ik256);
  for (const auto& row : aes256_rows) {
    INFO("counter " << row.counter);
    const auto ksn = aes_ksn(row.counter);
    auto txn = aes_dukpt::transaction_key(ik, ksn);
    REQUIRE(txn);
    CHECK(hx(txn->view()) == row.transaction_key);
    struct want {
      key_usage usage;
      key_type type;
      const char* key;
    };
    const std::vector<want> wants = {
        {key_usage::pin_encryption, key_type::aes128, row.pin_key128},
        {key_usage::mac_generation, key_type::aes128, row.mac_key128},
        {key_usage::data_encryption, key_type::aes128, row.data_key128},
        {key_usage::pin_encryption, key_type::aes256, row.pin_key256},
        {key_usage::mac_generation, key_type::aes256, row.mac_key256},
        {key_usage::data_encryption, key_type::aes256, row.data_key256},
    };
    for (const auto& w : wants) {
      auto k = aes_dukpt::working_key_from_transaction_key(txn->view(), ksn, w.usage, w.type);
      REQUIRE(k);
      CHECK(hx(k->view()) == w.key);
    }
  }
}

TEST_CASE("AES DUKPT large counters give the supplement's transaction keys", "[dukpt]") {
  for (const auto& row : aes128_large) {
    INFO("AES-128 counter " << row.counter);
    auto txn = aes_dukpt::transaction_key(hex(aes_ik128), aes_ksn(row.counter));
    REQUIRE(txn);
    CHECK(hx(txn->view()) == row.transaction_key);
  }
  for (const auto& row : aes256_large) {
    INFO("AES-256 counter " << row.counter);
    auto txn = aes_dukpt::transaction_key(hex(aes_ik256), aes_ksn(row.counter));
    REQUIRE(txn);
    CHECK(hx(txn->view()) == row.transaction_key);
  }
}

TEST_CASE("AES DUKPT message-level vectors (moov-io/dukpt): CMAC, HMAC and data", "[dukpt]") {
  using aes_dukpt::key_type;
  using aes_dukpt::key_usage;
  struct row {
    const char* counter;
    const char* cmac_request;
    const char* cmac_response;
    const char* hmac_request;
    const char* hmac_response;
    const char* data_request;
    const char* data_response;
  };
  const std::vector<row> rows = {
      {"00000001", "A2EB5C1C35809E58404E873C3C411E31", "DD4E1895FD9BF53D8DAF25568ABF551D",
       "B6F8B3159CD4E140159DA87A68C0FB7AF2F123D222662E98988C76386E8E8A02",
       "DDE7CB7BDE05AC9A934919B5D94C37954F2376BAF5D45031A56FE74D94C4B64D",
       "E5AFA5B408A3310E3D779C8A9A2AE29448BD5B4232582090DB703AF647205A79",
       "84904DFC6B5201A4F1FE2EAA49E70B8C01838EF53030790FF785D630AB3916B4"},
      {"00000002", "4D104704C53491A60944193DCAF6B411", "008CEAAE2B913BEEE76209EE9406DAC1",
       "A884FD458692820E8458AD9FF4FCE58D6B809AB3AE617AE1FC6B70E9E9C12B08",
       "32C4EEBF5FB820C4E90A580C0769E5BF8188007191AFAEF53F7C585B03285314",
       "A17A9658EE0F451D6CA11B65B592EF9C5F90BB175D926F1457B63B3273042476",
       "699ED7BC85994F1C11DE1C40177A629530E85262EA0B02FB80771255DC1F65B6"},
      {"00000003", "6A18904AA8E966A03505F5EEBDAEBD82", "40CB2F0C2E043D060063FAA916A849E1",
       "5CCB50FB8001C07C51191502BFC7586E165219F59D87938C8A7A84D41AF44F18",
       "255E08E91BB5AFFD26C695110FAB5167AB36C9A3C61C78BD2401292A8EFE7C0A",
       "E289C32A084A39419A6C147DE40B53A67BABE2BD22DC3D5EE09B002E83B93ACE",
       "0F440D9321C1ABBEF9CA7008B40CF18B3045A84D5435D6CF9A4955E3451C49E9"},
      {"00000004", "77BBD3FB827158B9B12880B0794D1C74", "51FDE192BC484F769AA0A86F8BC5CB30",
       "5E3C734C41496A10130BE415CBDB8E4F9027250997803DC742D4988123C2963F",
       "6493E4DB82E4ACFB3AA3830EBEF7365A31B0D7E3B463304FB3EBBC372A866292",
       "D074C0F81866781B92D008C8EA6A3947319B94361C7ECD3C1736020E0D57E629",
       "08A3D4FB24E9CA4864F63E1AB518C69327D87A6A709B9336E3E60FA7F312759A"},
      {"00000005", "C0CE6DA1F4434AD16EEEBF486C9616CD", "4B508F51104D184A9190061ED854200E",
       "E49D95FD38DF4E39371FD6FD0789E1A2E9A663E20764BF935B457ECEEAE46CBD",
       "401CBB584E48C3E08A212A3117E087520D38E4EC054749747D1435B421C9DCE6",
       "8F222D79AE7F942BF74D3EA9E364C0000D0C94AD7EA0A8CCF23330FCA4B1D0D0",
       "400E67A22795467C145D7A5D2475DFD8041C233C6E2D004CEDBEBA25AE5CE1A7"},
      {"00000006", "05222AE91471C590B3A9471523324C14", "ED90BD8AE4571C75CF08EA3EA195ABF8",
       "D5B61390352342D2027DFD120F32E77831B32BF34700FBA8232D80780D492766",
       "6644594E7C867C2BF0FBA7F00CAF2E184823AE0D9C40FCAA6F48A3605737094D",
       "19C254B0498CBD32E597D882B7D993513994EE913836E65711EA41F8D4B34728",
       "1524F027685DCDA7197E0DE3CB87EF83C6D61D2E483D47678C4914DEC2320B08"},
      {"00000007", "37FA54258AAF805A44AA1273C0DF928C", "52D6C1D3A95B1D21761E20870D9A7E8C",
       "E0A41D52B44C96D5D730BB0DC2F747E7FE5970CE58C0043C42CD3769F6CA3925",
       "55F096E89E56A27438F6D01A6DCBF9D396E29EA076C3CC9823B2BB5996ED17EE",
       "0710C8F0EB136629E30ADFB148562F6F80B786EC1074428B7C7511B7301EAAF0",
       "8CA084F21F599C7361C8F2B1565D993779C62EC3496F0113DF17B5C29EA4E404"},
      {"00000008", "85C7CA68F55F51E7DCAC969B8C111130", "B45399DB90C0BA75DB4B86605758695A",
       "D7CAB17596E6D193B83E0E13CAB35A179B7296DC04A42D8145B9DF6E60A2A47F",
       "32403C170DD07A7C823247DF37649D49FDE905482D1B1C6A62E03E735FA2E384",
       "304EC254A7B528D9892E47F7C1315D498C0D88EA8CD71CA52D38F362721AEA67",
       "8CD1A54538B9DC79A5DF4544ADE8D1F1A085AC1F89AA59BFF49351A68957DE1B"},
  };
  const auto ik = hex(aes_ik128);
  const auto msg = as_bytes(message);
  auto key = [&](const bytes& ksn, key_usage u, key_type t) {
    auto k = aes_dukpt::working_key(ik, ksn, u, t);
    REQUIRE(k);
    return std::move(*k);
  };
  for (const auto& r : rows) {
    INFO("counter " << r.counter);
    const auto ksn = aes_ksn(r.counter);
    auto creq = cmac_aes(key(ksn, key_usage::mac_generation, key_type::aes128).view(), msg);
    auto cresp = cmac_aes(key(ksn, key_usage::mac_verification, key_type::aes128).view(), msg);
    REQUIRE(creq);
    REQUIRE(cresp);
    CHECK(hx(*creq) == r.cmac_request);
    CHECK(hx(*cresp) == r.cmac_response);
    CHECK(hx(hmac_sha256(key(ksn, key_usage::mac_generation, key_type::hmac128).view(), msg)) ==
          r.hmac_request);
    CHECK(hx(hmac_sha256(key(ksn, key_usage::mac_verification, key_type::hmac128).view(), msg)) ==
          r.hmac_response);
    const auto dreq_key = key(ksn, key_usage::data_encryption, key_type::aes128);
    const auto dresp_key = key(ksn, key_usage::data_decryption, key_type::aes128);
    auto dreq = aes_dukpt::encrypt_data(dreq_key.view(), msg);
    auto dresp = aes_dukpt::encrypt_data(dresp_key.view(), msg);
    REQUIRE(dreq);
    REQUIRE(dresp);
    CHECK(hx(*dreq) == r.data_request);
    CHECK(hx(*dresp) == r.data_response);
    auto back = aes_dukpt::decrypt_data(dreq_key.view(), hex(r.data_request));
    REQUIRE(back);
    CHECK(back->size() == 32);
    CHECK(hx(back->view().first(msg.size())) == hx(msg));
  }
}

TEST_CASE("AES DUKPT counter rules: at most 16 one-bits, never zero", "[dukpt]") {
  const auto ik = hex(aes_ik128);
  auto ok = aes_dukpt::counter(aes_ksn("FFFF0000"));  // 16 one-bits: the last valid form
  REQUIRE(ok);
  CHECK(*ok == 0xFFFF0000u);
  // 0001FFFF has 17 one-bits: the supplement lists a key for it, but a host must reject it.
  for (const char* bad : {"0001FFFF", "00000000", "FFFFFFFF", "FFFF0001"}) {
    INFO("counter " << bad);
    auto txn = aes_dukpt::transaction_key(ik, aes_ksn(bad));
    REQUIRE_FALSE(txn);
    CHECK(txn.err().code == "dukpt.bad_counter");
    auto wk = aes_dukpt::working_key(ik, aes_ksn(bad), aes_dukpt::key_usage::pin_encryption,
                                     aes_dukpt::key_type::aes128);
    REQUIRE_FALSE(wk);
    CHECK(wk.err().code == "dukpt.bad_counter");
  }
}

TEST_CASE("AES DUKPT rejects bad lengths and key types stronger than their parent", "[dukpt]") {
  using aes_dukpt::key_type;
  using aes_dukpt::key_usage;
  auto r1 = aes_dukpt::initial_key(hex("FEDCBA9876543210"), hex(aes_ikid), key_type::aes128);
  REQUIRE_FALSE(r1);
  CHECK(r1.err().code == "dukpt.bad_key");
  auto r2 = aes_dukpt::initial_key(hex(aes_bdk128), hex("12345678901234"), key_type::aes128);
  REQUIRE_FALSE(r2);
  CHECK(r2.err().code == "dukpt.bad_ksn");
  auto r3 = aes_dukpt::initial_key(hex(aes_bdk128), hex(aes_ikid), key_type::aes256);
  REQUIRE_FALSE(r3);
  CHECK(r3.err().code == "dukpt.bad_key_type");
  auto r4 = aes_dukpt::initial_key(hex(aes_bdk256), hex(aes_ikid), key_type::tdes2);
  REQUIRE_FALSE(r4);
  CHECK(r4.err().code == "dukpt.bad_key_type");
  auto r5 = aes_dukpt::transaction_key(hex(aes_ik128), hex("123456789012345600000001FF"));
  REQUIRE_FALSE(r5);
  CHECK(r5.err().code == "dukpt.bad_ksn");
  auto r6 = aes_dukpt::working_key(hex(aes_ik128), aes_ksn("00000001"), key_usage::data_encryption,
                                   key_type::aes256);
  REQUIRE_FALSE(r6);
  CHECK(r6.err().code == "dukpt.bad_key_type");
  auto r7 = aes_dukpt::working_key(hex(aes_ik128), aes_ksn("00000001"), key_usage::mac_generation,
                                   key_type::hmac192);
  REQUIRE_FALSE(r7);
  CHECK(r7.err().code == "dukpt.bad_key_type");
  auto r8 = aes_dukpt::decrypt_data(hex(aes_ik128), bytes(20, 0));
  REQUIRE_FALSE(r8);
  CHECK(r8.err().code == "dukpt.bad_input");
  auto r9 = aes_dukpt::encrypt_data(bytes(8, 0), as_bytes(message));
  REQUIRE_FALSE(r9);
  CHECK(r9.err().code == "dukpt.bad_key");
}

TEST_CASE("AES DUKPT working key lengths follow the key type", "[dukpt]") {
  using aes_dukpt::key_type;
  const auto ik = hex(aes_ik256);
  const auto ksn = aes_ksn("00000001");
  for (auto t : {key_type::tdes2, key_type::tdes3, key_type::aes128, key_type::aes192, key_type::aes256,
                 key_type::hmac128, key_type::hmac192, key_type::hmac256}) {
    auto k = aes_dukpt::working_key(ik, ksn, aes_dukpt::key_usage::key_encryption, t);
    REQUIRE(k);
    CHECK(k->size() == aes_dukpt::key_length(t));
  }
}
