"""The leaderboard's claim and target checks (benchmarks/leaderboard.py) on a hand-made table."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import leaderboard  # noqa: E402

pytestmark = pytest.mark.one_backend


def _row(method, errors, fixed=None):
    seeds = [{"seed": i, "status": "ok", "test_error": e / 100} for i, e in enumerate(errors)]
    return {"entry": {"method": method, "fixed": fixed or {}}, "seeds": seeds,
            "test_error_mean": sum(errors) / len(errors) / 100}


def _merged():
    table30 = {"supervised": _row("supervised", [20, 22, 18]), "vat": _row("vat", [12, 14, 13]),
               "rpt": _row("rpt", [11, 12, 10]), "labelspreading-knn": _row("labelspreading-knn", [10, 10, 10]),
               "mixup": _row("mixup", [25, 26, 24])}
    table100 = {"supervised": _row("supervised", [8, 8, 8]), "vat": _row("vat", [2, 3, 1]),
                "rpt": _row("rpt", [4, 5, 3]), "labelspreading-knn": _row("labelspreading-knn", [4, 4, 4]),
                "mixup": _row("mixup", [12, 13, 11]), "mixup-ssl": _row("mixup-ssl", [9, 9, 9])}
    return {"results": {"30": table30, "100": table100}}


def test_claims_compare_means_and_pair_seeds():
    claims = {c[0][:3]: c[2] for c in leaderboard.check_claims(_merged())}
    a30, a100 = claims["(a)"]["30"], claims["(a)"]["100"]
    assert leaderboard._verdict(a30) == "fails" and leaderboard._verdict(a100) == "holds"
    vat_rpt = a30[0]
    assert vat_rpt[5] is False and vat_rpt[2] == pytest.approx(13.0) and vat_rpt[3] == pytest.approx(11.0)
    assert vat_rpt[4]["mean"] == pytest.approx(2.0)  # paired over the seeds: (1 + 2 + 3) / 3
    assert leaderboard._verdict(claims["(f)"]["30"]) == "not measured"
    assert leaderboard._verdict(claims["(d)"]["100"]) == "partly measured"  # no manifold-mixup row


def test_targets_best_row_labelspreading_and_semi_supervised_rows():
    targets = {t[0]: (t[1], t[2]) for t in leaderboard.check_targets(_merged())}
    assert targets["best kzoo row beats the better LabelSpreading row at 30 labels"][0] is False
    assert targets["best kzoo row beats the better LabelSpreading row at 100 labels"][0] is True
    assert targets["best kzoo row ≤ 2.0% at 100 labels"][0] is True
    met, evidence = targets["every semi-supervised method ≤ supervised at 100 labels"]
    # mixup-ssl (semi-supervised) is above supervised; supervised mixup is not counted
    assert met is False and "mixup-ssl" in evidence and "mixup 12" not in evidence
