#!/usr/bin/env python3
"""Writes the seed corpora for fuzz_tlv and fuzz_track2 (binary files). Re-run after editing."""
import pathlib

here = pathlib.Path(__file__).resolve().parent

tlv = {
    "pyemv_docstring": "9C0101E0055F2A0202089F0200",
    "bad_ppse_truncated": "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000031010500A56495341204445424954870101"[:-4],
    "ppse_response_full": "6F2F840E325041592E5359532E4444463031A51DBF0C1A61184F07A0000000031010500A56495341204445424954870101",
    "gpo_format1": "800E3C00080202001001020018010201",
    "genac_format1": "80128000F3B0189101D11416C106010A03A4A002",
    "record_57": "701B57131234560012345608D18112211229424900200F5F2403181130",
    "padding": "00009C0101FFFF00700600" "9F020107FFFF",
    "long_forms": "9C8101AA9F028200030102035F2A8300000101",
    "three_byte_tag": "9F810102ABCD",
    "bad_indefinite": "708000000000",
    "bad_length_form": "9C840000000100",
    "bad_overflow": "7003" "9C0501",
    "bad_tag_too_long": "9F81810100",
    "deep": "E010E00EE00CE00AE008E006E004E0029C00",
}
track2 = {
    "moov_ascii.txt": b"4000340000000506=2512111123400001230",
    "moov_ascii_d.txt": b"4000340000000506D2512111123400001230",
    "sentinels.txt": b";4000340000000506=2512111123400001230?",
    "emvpt_tag57.bin": bytes.fromhex("1234560012345608D18112211229424900200F"),
    "pyemv_tag57.bin": bytes.fromhex("5123456789012345D35121010000000000000F"),
    "bad_no_separator.txt": b"4000340000000506",
    "bad_short.txt": b"4000340000000506=251",
    "bad_padding.bin": bytes.fromhex("4000340000000506D2F12111"),
    "too_long.txt": b"4000340000000506123=25121110000000000000",
}


def write(dirname, name, data):
    d = here / dirname
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


for name, h in tlv.items():
    write("fuzz_tlv", name + ".bin", bytes.fromhex(h))
for name, data in track2.items():
    write("fuzz_track2", name, data)
