"""The DICOMweb client (engine/pacs/dicomweb.py) against a real Orthanc: find, pull, push, the round trip of a
30-frame cine through segmentation and SEGs, TLS, and every failure one line with nothing half-written and no
password anywhere."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import certifi
import highdicom as hd
import numpy as np
import pydicom
import pytest

from thyroid_studio import cli
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.io.dicom_seg import instance_uid, read_seg
from thyroid_studio.engine.io.frames import read_frame, read_frames
from thyroid_studio.engine.labels.worklist import Worklist
from thyroid_studio.engine.pacs.dicomweb import PASSWORD_VARIABLE, PacsError, Server, find, pull, push

from orthanc_server import PASSWORD, USER, free_port, start_orthanc, stop_orthanc
from pacs_files import PYDICOM_US, ddti_dicom, ddti_frames, pydicom_us, series_without_instances

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "trfe-a-lite0.pt"


@pytest.fixture(scope="module")
def stored(orthanc, tmp_path_factory, shared_data) -> dict[str, Path]:
    """pydicom's ultrasound files and a DICOM made from a DDTI frame, on the server."""
    folder = tmp_path_factory.mktemp("stored")
    files = {name: pydicom_us(name) for name in PYDICOM_US}
    files["ddti"] = ddti_dicom(folder / "ddti.dcm", ddti_frames(shared_data, 1)[0], patient="TS-FIND")
    orthanc.store(*files.values())
    return files


def study_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_find_lists_the_studies_and_their_series(orthanc, stored):
    server = orthanc.server()
    everything = {study.uid for study in find(server)}
    assert {study_of(path) for path in stored.values()} <= everything
    [ddti] = find(server, patient="TS-FIND")
    assert (ddti.uid, ddti.patient_id, ddti.date, ddti.modalities) == (study_of(stored["ddti"]), "TS-FIND", "20240102",
                                                                       ("US",))
    [series] = ddti.series
    assert (series.modality, series.number, series.instances) == ("US", 1, 1)
    two = study_of(stored["examples_jpeg2k.dcm"])  # pydicom keeps two instances in this study's series
    assert [s.instances for s in find(server, study=two)[0].series] == [2]
    assert find(server, patient="TS-FIND", modality="SEG") == []


def test_pull_gives_the_files_as_stored(orthanc, stored, tmp_path):
    server = orthanc.server()
    study = study_of(stored["examples_jpeg2k.dcm"])
    seen = []
    report = pull(server, study, tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert (len(report.files), report.fetched, report.notes, report.cancelled) == (2, 2, [], False)
    assert seen[-1] == (2, 2)
    by_uid = {instance_uid(path): path for path in (stored["examples_jpeg2k.dcm"], stored["examples_rgb_color.dcm"])}
    for path in report.files:
        original = by_uid[path.stem]
        assert path.parent.parent == tmp_path / study and path.suffix == ".dcm"
        syntax = pydicom.dcmread(original).file_meta.TransferSyntaxUID
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax  # as stored, not transcoded
        assert np.array_equal(read_frame(path).pixels, read_frame(original).pixels)
    assert not list(tmp_path.rglob(".*"))  # no partial folder left
    again = pull(server, study, tmp_path)
    assert (len(again.files), again.fetched) == (2, 0)  # instances already there are not fetched again


def test_a_study_or_series_the_server_does_not_have_is_one_line(orthanc, stored, tmp_path):
    server = orthanc.server()
    with pytest.raises(PacsError, match=rf"^study 1\.2\.3\.4 is not on {orthanc.dicomweb}$"):
        pull(server, "1.2.3.4", tmp_path / "out")
    with pytest.raises(PacsError, match=r"^series 9\.9 is not in study "):
        pull(server, study_of(stored["ddti"]), tmp_path / "out", ["9.9"])
    with pytest.raises(PacsError, match=r"^'\.\./x' is not a study UID"):
        pull(server, "../x", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_series_without_instances_is_one_line(tmp_path):
    with series_without_instances() as (url, study, series):
        server = Server(url)
        with pytest.raises(PacsError, match=rf"^series {series} of study {study} holds no instances on {url}; "
                                            "nothing pulled$"):
            pull(server, study, tmp_path, [series])
        report = pull(server, study, tmp_path)  # the whole study: a note, and nothing else to pull
        assert report.files == [] and report.notes == [f"series {series} of study {study} holds no instances on "
                                                       f"{url}; nothing pulled"]
    assert list(tmp_path.iterdir()) == []


def test_servers_that_fail_are_one_line(orthanc, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    cases = {
        Server(down): rf"^cannot reach {down}: connection refused \(is the server running, and the URL right\?\)$",
        orthanc.server(password="wrong"): r"the server refused the credentials \(HTTP 401 Unauthorized\); check the "
                                          r"user and password$",
        orthanc.server(username=None): r"\(HTTP 401 Unauthorized\); give --user \(and the password\)$",
        Server(orthanc.rest + "/wrong", USER, PASSWORD):
            r"no DICOMweb service there \(HTTP 404 to the search for .*\); check the URL",
        Server(orthanc.rest, USER, PASSWORD): r"(is not DICOMweb \(not a list of DICOM JSON objects\)|no DICOMweb "
                                              r"service there)",  # Orthanc's own REST API
    }
    for server, message in cases.items():
        for call in (lambda: find(server), lambda: pull(server, "1.2.3", tmp_path / "out")):
            with pytest.raises(PacsError, match=message) as raised:
                call()
            assert "\n" not in str(raised.value) and PASSWORD not in str(raised.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(PacsError, match=r"^cannot reach "):
        push(Server(down), [pydicom_us("examples_rgb_color.dcm")])


@pytest.mark.slow
def test_a_pull_that_fails_or_is_cancelled_midway_leaves_no_half_series(tmp_path, shared_data):
    """A server that stops after two of six instances, and a pull cancelled after two: no series folder, no
    partial folder; the series pulled whole before stay."""
    process, own = start_orthanc(tmp_path / "orthanc")
    try:
        frames = ddti_frames(shared_data, 7)
        study = "1.2.826.0.1.3680043.10.543.1"
        whole = ddti_dicom(tmp_path / "up" / "whole.dcm", frames[6], study_uid=study)
        series = [ddti_dicom(tmp_path / "up" / f"{i}.dcm", frames[i], study_uid=study,
                             series_uid="1.2.826.0.1.3680043.10.543.2", number=i + 1) for i in range(6)]
        own.store(whole, *series)
        server = own.server()
        whole_series = str(pydicom.dcmread(whole, stop_before_pixels=True).SeriesInstanceUID)
        cancelled = pull(server, study, tmp_path / "a", should_stop=_after(2))
        assert cancelled.cancelled
        assert not (tmp_path / "a" / study / "1.2.826.0.1.3680043.10.543.2").exists()
        pull(server, study, tmp_path / "b", [whole_series])

        def stop_the_server(done, total):
            if done == 2:
                stop_orthanc(process)

        with pytest.raises(PacsError, match=r"^cannot reach .*connection refused"):
            pull(server, study, tmp_path / "b", ["1.2.826.0.1.3680043.10.543.2"], progress=stop_the_server)
        left = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
        kept = Path(study) / whole_series
        assert left == [Path(study), kept, kept / f"{instance_uid(whole)}.dcm"]
    finally:
        stop_orthanc(process)


def _after(count: int):
    """A should_stop that says stop from its ``count + 1``-th call on."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > count

    return should_stop


def test_push_stores_dicom_files_and_names_the_others(orthanc, stored, tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not DICOM")
    server = orthanc.server()
    report = push(server, [stored["examples_palette.dcm"], text])
    assert report.stored == [stored["examples_palette.dcm"]]
    assert report.failed == [(text, "notes.dcm: not a DICOM file")]


def test_tls_with_the_server_ca_and_without(orthanc_tls, stored, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs: the CA asked for must win over them
    [study] = find(orthanc_tls.server(), patient="TS-FIND")  # its own CA: checked and trusted
    assert study.uid == study_of(stored["ddti"])
    with pytest.raises(PacsError, match=r"the TLS connection failed \(certificate verify failed"):
        find(orthanc_tls.server(verify=True))  # the system's CAs do not know it
    assert [s.uid for s in find(orthanc_tls.server(verify=False), patient="TS-FIND")] == [study.uid]


def test_the_password_is_never_logged_printed_or_written(orthanc, stored, tmp_path, caplog, capsys, monkeypatch):
    caplog.set_level(logging.DEBUG)  # dicomweb-client, requests and urllib3 log URLs and headers at DEBUG
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    url = orthanc.dicomweb.replace("://", f"://{USER}:{PASSWORD}@")  # credentials in the URL are taken out of it
    server = Server.from_url(url)
    assert (server.username, server.password, server.url) == (USER, PASSWORD, orthanc.dicomweb)
    assert PASSWORD not in repr(server)
    study = study_of(stored["ddti"])
    assert cli.main(["pacs", "find", url, "--patient", "TS-FIND"]) == 0
    assert cli.main(["pacs", "pull", orthanc.dicomweb, "--user", USER, "--study", study, "--out", str(tmp_path)]) == 0
    assert cli.main(["pacs", "push", url, str(stored["ddti"])]) == 0
    assert cli.main(["pacs", "find", url.replace(PASSWORD, "wrong"), "--patient", "TS-FIND"]) == cli.EXIT_USAGE
    out = capsys.readouterr()
    assert "TS-FIND" in out.out and "Unauthorized" in out.err
    logged = "\n".join(f"{record.getMessage()} {record.args}" for record in caplog.records)
    assert logged and PASSWORD not in logged and "wrong" not in logged
    assert PASSWORD not in out.out + out.err
    assert all(PASSWORD.encode() not in path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())


@pytest.mark.slow
def test_round_trip_of_a_30_frame_cine_through_segs(orthanc, tmp_path, shared_data, monkeypatch, capsys):
    """Pull a 30-frame cine, segment every frame, push the 30 SEGs, find and pull them, read them back as labels:
    the masks identical bit for bit to the PNG masks; every SEG passes highdicom's reader (and dciodvfy)."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    cine = ddti_dicom(tmp_path / "scanner" / "cine.dcm", ddti_frames(shared_data, 30), patient="TS-CINE")
    orthanc.store(cine)
    server = orthanc.server()
    [study] = find(server, patient="TS-CINE")
    [pulled] = pull(server, study.uid, tmp_path / "pacs").files
    assert [f.pixels.tobytes() for f in read_frames(pulled)] == [f.pixels.tobytes() for f in read_frames(cine)]

    out = tmp_path / "masks"
    assert cli.main(["segment", str(pulled), "--out", str(out), "--model", str(SHIPPED), "--seg-out",
                     "--threads", "1"]) == 0
    assert cli.main(["pacs", "push", orthanc.dicomweb, "--user", USER, str(out)]) == 0
    assert "30 of 30 files stored" in capsys.readouterr().err

    [with_segs] = find(server, study=study.uid, modality="SEG")
    [seg_series] = with_segs.series
    assert (seg_series.modality, seg_series.instances) == ("SEG", 30)
    back = pull(server, study.uid, tmp_path / "back", [seg_series.uid]).files
    assert len(back) == 30

    worklist = Worklist()
    rows, errors = worklist.add([pulled, *back])
    assert errors == [] and len(rows) == 30
    uid = instance_uid(pulled)
    nodules = 0
    for row in rows:
        worklist.frame(row)
        entry = worklist[row]
        png = read_mask(out / f"{entry.name}.png")
        assert np.array_equal(entry.ground_truth, png), entry.name  # bit for bit
        nodules += bool(png.any())
    assert nodules >= 15  # the shipped model finds nodules on most DDTI frames: the masks are not trivial
    for path in back:
        seg = hd.seg.segread(path)
        assert uid in {sop for _, _, sop in seg.get_source_image_uids()}
        [(_, index)] = read_seg(path).frames
        assert np.array_equal(seg.get_pixels_by_source_frame(uid, [index + 1])[0, :, :, 0].astype(bool),
                              read_mask(out / f"{pulled.stem}_f{index:04d}.png"))
    if shutil.which("dciodvfy"):
        result = subprocess.run(["dciodvfy", str(back[0])], capture_output=True, text=True)
        assert "Error" not in result.stdout + result.stderr
