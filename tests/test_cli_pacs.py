"""`thyroid-studio pacs find|pull|push` against a real Orthanc: what it prints, its exit statuses, and each
failure as one line on stderr with nothing written."""
from __future__ import annotations

import pytest

from thyroid_studio import cli
from thyroid_studio.engine.pacs.dicomweb import PASSWORD_VARIABLE

from orthanc_server import PASSWORD, USER, free_port
from pacs_files import ddti_dicom, ddti_frames, series_without_instances


@pytest.fixture
def study(orthanc, tmp_path, shared_data, monkeypatch):
    """A study with one DDTI frame on the server; the password in the environment."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    path = ddti_dicom(tmp_path / "upload" / "frame.dcm", ddti_frames(shared_data, 1)[0], patient="TS-CLI",
                      study_uid="1.2.826.0.1.3680043.10.543.77")
    orthanc.store(path)
    return "1.2.826.0.1.3680043.10.543.77"


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main(list(map(str, args)))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_find_pull_push(orthanc, study, tmp_path, capsys):
    status, out, _ = run(capsys, "pacs", "find", orthanc.dicomweb, "--user", USER, "--patient", "TS-CLI")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"study {study}  patient TS-CLI (Test^DDTI)  2024-01-02  US")
    assert lines[1].startswith("  series ") and "  US  #1  1 instances" in lines[1]

    status, _, err = run(capsys, "pacs", "pull", orthanc.dicomweb, "--user", USER, "--study", study, "--out",
                         tmp_path / "pulled")
    assert status == 0 and f"1 instances (1 fetched, 0 already there) of study {study}" in err
    [pulled] = (tmp_path / "pulled" / study).glob("*/*.dcm")

    status, _, err = run(capsys, "pacs", "push", orthanc.dicomweb, "--user", USER, pulled, tmp_path / "upload")
    assert status == 0 and f"2 of 2 files stored on {orthanc.dicomweb}" in err
    (tmp_path / "notes.txt").write_text("not DICOM")
    status, _, err = run(capsys, "pacs", "push", orthanc.dicomweb, "--user", USER, pulled, tmp_path / "notes.txt")
    assert status == cli.EXIT_SOME_FAILED and "not stored: notes.txt: not a DICOM file" in err


def test_failures_are_one_line_and_write_nothing(orthanc, study, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    cases = [
        (["pacs", "pull", down, "--study", study, "--out", out], "cannot reach"),
        (["pacs", "pull", orthanc.rest + "/wrong", "--user", USER, "--study", study, "--out", out], "HTTP 404"),
        (["pacs", "pull", orthanc.dicomweb, "--study", study, "--out", out], "HTTP 401 Unauthorized"),
        (["pacs", "pull", orthanc.dicomweb, "--user", USER, "--study", "1.2.3.4", "--out", out],
         "study 1.2.3.4 is not on"),
        (["pacs", "find", "ftp://example.org/", "--user", USER], "is not an http:// or https:// URL"),
        (["pacs", "find", orthanc.dicomweb, "--user", USER, "--ca-bundle", tmp_path / "none.pem"], "no such file"),
    ]
    with series_without_instances() as (url, empty_study, series):
        cases.append((["pacs", "pull", url, "--study", empty_study, "--series", series, "--out", out],
                      "holds no instances"))
        for args, problem in cases:
            status, printed, err = run(capsys, *args)
            [line] = err.splitlines()
            assert status == cli.EXIT_USAGE and problem in line and line.startswith("thyroid-studio pacs "), args
    assert not out.exists()
    monkeypatch.delenv(PASSWORD_VARIABLE)
    status, _, err = run(capsys, "pacs", "find", orthanc.dicomweb, "--user", USER)
    assert status == cli.EXIT_USAGE and f"no password; set ${PASSWORD_VARIABLE}" in err


def test_insecure_says_so(orthanc_tls, study, capsys):
    status, out, err = run(capsys, "pacs", "find", orthanc_tls.dicomweb, "--user", USER, "--insecure", "--patient",
                           "TS-CLI")
    assert status == 0 and study in out
    assert f"warning: not checking the TLS certificate of {orthanc_tls.dicomweb} (--insecure)" in err
    status, out, _ = run(capsys, "pacs", "find", orthanc_tls.dicomweb, "--user", USER, "--ca-bundle",
                         orthanc_tls.verify, "--patient", "TS-CLI")
    assert status == 0 and study in out
