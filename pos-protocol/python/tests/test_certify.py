"""tools/certify, the scripted certification runner: the shipped sim-basic cases all pass against
the real acquirer simulator, a wrong expectation fails its case and the run, bad case files are
refused with exit 2 naming the case and the key, and card data never reaches the output.

Runs the tool as a program (the same interpreter) with --build pointing at this build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

from harness import BIN, CARDS, SOURCE, card_pan, require_binaries

CERTIFY = SOURCE / "tools" / "certify"
SIM_BASIC = SOURCE / "tools" / "certify-cases" / "sim-basic.toml"
BUILD = BIN.parent


def certify(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CERTIFY), *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].get("summary"):
        raise AssertionError("certify --json: no summary line at the end")
    return lines[:-1], lines[-1]


class CaseFile:
    """A case file in a temporary directory, removed afterwards."""

    def __init__(self, test: unittest.TestCase, text: str):
        d = tempfile.TemporaryDirectory(prefix="eftd-certify-test-")
        test.addCleanup(d.cleanup)
        self.path = Path(d.name) / "cases.toml"
        self.path.write_text(text)


def every_pan() -> list[str]:
    pans = []
    for profile in sorted(CARDS.glob("*.toml")):
        with open(profile, "rb") as f:
            if "track2" in tomllib.load(f).get("card", {}):
                pans.append(card_pan(profile.name))
    return pans


class CertifyAgainstSimulatorTest(unittest.TestCase):
    def setUp(self):
        require_binaries("eftd", "eftpad", "eft-acquirer-sim", "eftctl")

    def test_sim_basic_cases_all_pass(self):
        run = certify(str(SIM_BASIC), "--build", str(BUILD), "--json")
        cases, summary = json_lines(run.stdout)
        with open(SIM_BASIC, "rb") as f:
            names = [c["name"] for c in tomllib.load(f)["case"]]
        self.assertEqual([c["case"] for c in cases], names)
        failed = [(c["case"], c["reason"]) for c in cases if c["verdict"] != "PASS"]
        self.assertEqual(failed, [], run.stderr[-3000:])
        self.assertEqual((summary["total"], summary["passed"], summary["failed"], summary["skipped"]),
                         (len(names), len(names), 0, 0))
        self.assertEqual(run.returncode, 0)
        by_name = {c["case"]: c for c in cases}
        # The response codes come from the journal, not from the expectation.
        self.assertEqual(by_name["insufficient-funds"]["actual_rc"], "51")
        self.assertEqual(by_name["online-pin-wrong"]["actual_rc"], "55")
        self.assertEqual(by_name["online-pin-wrong"]["result_reason"], "issuer.incorrect_pin")
        self.assertIsNone(by_name["expired-card"]["actual_rc"])
        self.assertEqual(by_name["expired-card"]["result_reason"], "card.expired")
        # No card data in anything the tool printed (never print the haystack).
        text = run.stdout + run.stderr
        for pan in every_pan():
            self.assertFalse(pan in text, "a clear PAN reached certify's output")
        self.assertFalse('"9999"' in text or '"1234"' in text, "a PIN reached certify's output")

    def test_a_wrong_expected_rc_fails_that_case_and_the_run(self):
        cases = CaseFile(self, """
[[case]]
name = "approve"
amount = "12.00"
card = "visa-approve"
expect_rc = "00"

[[case]]
name = "expects-approval-of-51"
amount = "12.51"
card = "visa-approve.toml"
entry_mode = "magstripe"
expect_rc = "00"
""")
        run = certify(str(cases.path), "--build", str(BUILD), "--json")
        self.assertEqual(run.returncode, 1, run.stderr[-3000:])
        rows, summary = json_lines(run.stdout)
        self.assertEqual([(r["case"], r["verdict"]) for r in rows],
                         [("approve", "PASS"), ("expects-approval-of-51", "FAIL")])
        self.assertEqual(rows[1]["actual_rc"], "51")
        self.assertIn("rc 51 != 00", rows[1]["reason"])
        self.assertEqual((summary["passed"], summary["failed"]), (1, 1))

        table = certify(str(cases.path), "--build", str(BUILD))
        self.assertEqual(table.returncode, 1)
        self.assertRegex(table.stdout, r"expects-approval-of-51 .* FAIL +rc 51 != 00")
        self.assertIn("2 cases: 1 passed, 1 failed, 0 skipped", table.stdout)


class CertifyInputTest(unittest.TestCase):
    """Bad input is exit 2 before anything starts (so no binaries are needed)."""

    GOOD = '[[case]]\nname = "ok"\namount = "1.00"\ncard = "visa-approve"\nexpect_rc = "00"\n'

    def assertRefused(self, text: str, *expected: str):
        cases = CaseFile(self, text)
        run = certify(str(cases.path), "--build", "/nonexistent")
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertEqual(run.stdout, "")
        for e in expected:
            self.assertIn(e, run.stderr)

    def test_malformed_case_files_name_the_case_and_the_key(self):
        second = self.GOOD + '[[case]]\nname = "bad"\ncard = "visa-approve"\nexpect_rc = "00"\n'
        table = [
            (second + 'amount = 12.5\n', "case 2 ('bad'): key 'amount'"),
            (second + 'amount = "12.5"\n', "case 2 ('bad'): key 'amount'"),
            (second, "case 2 ('bad'): key 'amount'"),
            (second + 'amout = "1.00"\namount = "1.00"\n', "case 2 ('bad'): key 'amout': unknown key"),
            (second + 'amount = "1.00"\nexpect_outcome = "maybe"\n', "key 'expect_outcome'"),
            (second + 'amount = "1.00"\nentry_mode = "swipe"\n', "key 'entry_mode'"),
            (second + 'amount = "1.00"\npin = "12"\n', "key 'pin'"),
            (second + 'amount = "1.00"\ncurrency = "zł"\n', "key 'currency'"),
            (second + 'amount = "1.00"\ntype = "preauth"\n', "key 'type'"),
            (self.GOOD + '[[case]]\nname = "ok"\namount = "1.00"\ncard = "visa-approve"\nexpect_rc = "00"\n',
             "case 2 ('ok'): key 'name': duplicate of case 1"),
            (self.GOOD.replace('card = "visa-approve"', 'card = "no-such-card"'), "case 1 ('ok'): key 'card'"),
            (self.GOOD.replace('expect_rc = "00"\n', ""), "case 1 ('ok'): key 'expect_rc'"),
            (self.GOOD.replace('expect_rc = "00"', 'expect_rc = "000"'), "key 'expect_rc'"),
            ('[[case]]\namount = "1.00"\ncard = "visa-approve"\nexpect_rc = "00"\n', "case 1: key 'name'"),
            (self.GOOD + '[[case]]\nname = "r"\ntype = "refund"\namount = "1.00"\ncard = "visa-approve"\n'
             'expect_rc = "00"\noriginal = "later"\n', "case 2 ('r'): key 'original'"),
            (self.GOOD + '[[case]]\nname = "b"\ntype = "balance"\namount = "1.00"\ncard = "visa-approve"\n'
             'expect_rc = "00"\n', "case 2 ('b'): key 'amount'"),
            ('[cases]\nname = "x"\n', "unknown top-level key 'cases'"),
            ('', "key 'case'"),
            ('[[case]\nname = "x"\n', "not valid TOML"),
        ]
        for text, expected in table:
            with self.subTest(expected=expected):
                self.assertRefused(text, expected)

    def test_a_pin_is_never_quoted_in_an_error(self):
        self.assertRefused(self.GOOD.replace('expect_rc', 'pin = "98765432109876"\nexpect_rc'), "key 'pin'")
        cases = CaseFile(self, self.GOOD.replace('expect_rc', 'pin = "98765432109876"\nexpect_rc'))
        run = certify(str(cases.path), "--build", "/nonexistent")
        self.assertFalse("98765432109876" in run.stderr, "the PIN was quoted")

    def test_bad_command_lines_exit_2(self):
        self.assertEqual(certify().returncode, 2)
        self.assertEqual(certify(str(SIM_BASIC), "--acquirer", "no-port").returncode, 2)
        self.assertEqual(certify(str(SIM_BASIC), "--set", "novalue").returncode, 2)
        self.assertEqual(certify("/nonexistent/cases.toml").returncode, 2)

    def test_chip_and_contactless_cases_skip_without_starting_anything(self):
        # --build names no binaries: a run that tried to start eftd would exit 1.
        run = certify(str(SOURCE / "tools" / "certify-cases" / "emv-pending.toml"), "--build", "/nonexistent",
                      "--json")
        self.assertEqual(run.returncode, 0, run.stderr)
        rows, summary = json_lines(run.stdout)
        self.assertTrue(rows)
        self.assertTrue(all(r["verdict"] == "SKIP" and "EMV kernel" in r["reason"] for r in rows))
        self.assertEqual((summary["skipped"], summary["failed"]), (len(rows), 0))

    def test_missing_binaries_exit_1(self):
        cases = CaseFile(self, self.GOOD)
        run = certify(str(cases.path), "--build", "/nonexistent")
        self.assertEqual(run.returncode, 1)
        self.assertIn("missing in /nonexistent/bin", run.stderr)


if __name__ == "__main__":
    unittest.main()
