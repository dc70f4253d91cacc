"""A DICOMweb server (Orthanc, dcm4chee, a cloud PACS): find, pull and push, every failure one line.

``find`` lists studies and their series (QIDO-RS). ``pull`` retrieves a study's instances (WADO-RS, in the
transfer syntax they are stored in) into ``<out>/<study UID>/<series UID>/<SOP instance UID>.dcm``: a series
is gathered in a hidden ``.<series UID>.partial`` folder and moved into place once whole, so a pull that fails
or is cancelled leaves no half-pulled series (instances already there are not fetched again). ``push`` stores
files (STOW-RS) one by one, so one refused file does not stop the others.

Credentials: a :class:`Server`'s ``url`` never holds them (``Server.from_url`` takes ``user:password@`` out of
it), its ``repr`` hides the password, and no message names it, so nothing logged, printed or recorded does.
TLS: ``verify`` is True (the system's CAs), the path of a CA bundle (a hospital's own CA), or False (no check).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pydicom

PASSWORD_VARIABLE = "THYROID_STUDIO_PACS_PASSWORD"  # where the command line takes a password from
TIMEOUT_S = 30.0
ORIGINAL_SYNTAX = (("application/dicom", "*"),)  # WADO-RS: the instance as stored, not transcoded
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # a UID names files: nothing else may reach a path
_SERIES_FIELDS = ["SeriesDescription", "SeriesNumber", "Modality", "NumberOfSeriesRelatedInstances"]
_STUDY_FIELDS = ["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries"]
# DICOM JSON tags of what the rows show
_TAGS = {"StudyInstanceUID": "0020000D", "SeriesInstanceUID": "0020000E", "SOPInstanceUID": "00080018",
         "PatientID": "00100020", "PatientName": "00100010", "StudyDate": "00080020", "StudyDescription": "00081030",
         "ModalitiesInStudy": "00080061", "Modality": "00080060", "SeriesNumber": "00200011",
         "SeriesDescription": "0008103E", "NumberOfSeriesRelatedInstances": "00201209"}

Progress = Callable[[int, int], None]  # (done, total)


class PacsError(ValueError):
    """The server could not be reached or refused, or what was asked is not there: one line, without credentials."""


@dataclass(frozen=True)
class Server:
    """A DICOMweb service: its root URL (e.g. ``http://localhost:8042/dicom-web``), basic-auth user and password,
    TLS verification (True, a CA bundle path, or False) and the seconds to wait for an answer."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_url(cls, url: str, username: str | None = None, password: str | None = None, verify: bool | str = True,
                 timeout_s: float = TIMEOUT_S) -> Server:
        """A server from a URL that may hold ``user:password@``: they are taken out of the URL (the arguments win)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError(f"{_without_credentials(url)!r} is not an http:// or https:// URL of a DICOMweb service")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        if ":" in parts.hostname:  # an IPv6 address
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port is not None else "")
        clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return cls(clean, username or parts.username or None, password if password is not None else parts.password,
                   verify, timeout_s)


def _without_credentials(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//", url)


@dataclass(frozen=True)
class Series:
    study_uid: str
    uid: str
    modality: str
    number: int | None
    description: str
    instances: int | None  # as the server counts them; None when it does not say


@dataclass(frozen=True)
class Study:
    uid: str
    patient_id: str
    patient_name: str
    date: str  # YYYYMMDD as the server gives it
    description: str
    modalities: tuple[str, ...]
    series: tuple[Series, ...] = ()


@dataclass
class PullReport:
    """What a pull did: the instance files of the series pulled (those already there included), how many were
    fetched, one line per series that could not be pulled (empty), and whether it was cancelled."""

    files: list[Path] = field(default_factory=list)
    fetched: int = 0
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False


@dataclass
class PushReport:
    """What a push did: the files stored, and those refused (path, one-line reason)."""

    stored: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False


# ---------------------------------------------------------------- the client and its errors


def _client(server: Server):
    import requests
    from dicomweb_client import DICOMwebClient

    class Session(requests.Session):
        """A session whose own TLS choice wins: requests lets $REQUESTS_CA_BUNDLE override ``session.verify``,
        which would ignore a CA bundle or "no check" asked for."""

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if self.verify is not True:
                settings["verify"] = self.verify
            return settings

    session = Session()
    if server.username:
        session.auth = (server.username, server.password or "")
    session.verify = server.verify
    client = DICOMwebClient(server.url, session=session, timeout=server.timeout_s)
    client.set_http_retry_params(retry=False)  # a refusal is reported at once, not after minutes of back-off
    return client


@contextlib.contextmanager
def _answers(server: Server, what: str, not_found: str | None = None) -> Iterator[None]:
    """Turn what ``requests`` and the client raise while asking ``what`` into one PacsError line.
    ``not_found``: the line for an HTTP 404 (default: no DICOMweb service at the URL)."""
    import requests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning: the caller says it once
        try:
            yield
        except PacsError:
            raise
        except requests.exceptions.SSLError as exc:
            raise PacsError(f"{server.url}: the TLS connection failed ({_cause(exc)}); give the server's CA with "
                            "--ca-bundle FILE, or --insecure to skip the check") from None
        except requests.exceptions.Timeout:
            raise PacsError(f"{server.url}: no answer within {server.timeout_s:g} s to {what}") from None
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(f"cannot reach {server.url}: {_cause(exc)} (is the server running, and the URL "
                            "right?)") from None
        except requests.exceptions.HTTPError as exc:
            raise PacsError(_http_problem(server, exc.response, what, not_found)) from None
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"{server.url}: {what} failed ({_cause(exc)})") from None
        except ValueError as exc:  # JSON that is not DICOM JSON, a multipart answer that is not DICOM
            raise PacsError(f"{server.url}: the answer to {what} is not DICOMweb ({_first_line(exc)}); is this the "
                            "URL of a DICOMweb service (Orthanc's: http://HOST:8042/dicom-web)?") from None


def _http_problem(server: Server, response, what: str, not_found: str | None) -> str:
    code, reason = response.status_code, response.reason or ""
    if code == 401:
        hint = "check the user and password" if server.username else "give --user (and the password)"
        return f"{server.url}: the server refused the credentials (HTTP 401 Unauthorized); {hint}"
    if code == 403:
        return f"{server.url}: the server forbids {what} to this user (HTTP 403 Forbidden)"
    if code == 404:
        return not_found or (f"{server.url}: no DICOMweb service there (HTTP 404 to {what}); check the URL "
                             "(Orthanc's: http://HOST:8042/dicom-web)")
    return f"{server.url}: HTTP {code} {reason} to {what}".rstrip()


def _cause(exc: BaseException) -> str:
    """The innermost reason of a requests error, short: "connection refused", "certificate verify failed", ..."""
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException)
                                                   else None) or seen.__context__
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
        return "connection refused"
    if isinstance(seen, socket.gaierror) or "Name or service not known" in str(seen):
        return "the host name is not known"
    text = _first_line(seen)
    match = re.search(r"\[SSL: [A-Z_]+\] ([^(]+)", text)
    if match:
        return match.group(1).strip()
    return re.sub(r"^<[^>]*>: ", "", text)[:160]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------- DICOM JSON


def _dicom_json(server: Server, found, what: str) -> list[dict]:
    """A search's answer, checked to be DICOM JSON (a list of objects): another service at the URL answers
    otherwise (Orthanc's own REST API lists IDs as strings)."""
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise PacsError(f"{server.url}: the answer to {what} is not DICOMweb (not a list of DICOM JSON objects); is "
                        "this the URL of a DICOMweb service (Orthanc's: http://HOST:8042/dicom-web)?")
    return found


def _value(item: dict, keyword: str, default=""):
    values = item.get(_TAGS[keyword], {}).get("Value") or [default]
    value = values[0]
    if isinstance(value, dict):  # a person name
        return value.get("Alphabetic", default)
    return value


def _uid(item: dict, keyword: str, server: Server) -> str:
    uid = str(_value(item, keyword))
    if not _UID.match(uid) or len(uid) > 64:
        raise PacsError(f"{server.url}: the server gave {keyword} {uid[:70]!r}, which is not a UID")
    return uid


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _series_rows(client, server: Server, study_uid: str, modality: str | None) -> tuple[Series, ...]:
    filters = {"Modality": modality} if modality else None
    what = f"the search for the series of study {study_uid}"
    with _answers(server, what):
        found = _dicom_json(server, client.search_for_series(study_uid, search_filters=filters, fields=_SERIES_FIELDS),
                            what)
    rows = [Series(study_uid, _uid(item, "SeriesInstanceUID", server), str(_value(item, "Modality")),
                   _number(_value(item, "SeriesNumber", None)), str(_value(item, "SeriesDescription")),
                   _number(_value(item, "NumberOfSeriesRelatedInstances", None))) for item in found]
    return tuple(sorted(rows, key=lambda s: (s.number is None, s.number or 0, s.uid)))


# ---------------------------------------------------------------- find, pull, push


def find(server: Server, patient: str | None = None, study: str | None = None,
         modality: str | None = None) -> list[Study]:
    """The studies that match (patient ID, study UID, a modality in the study), each with its series (of that
    modality when one is given), oldest first."""
    client = _client(server)
    filters = {key: value for key, value in (("PatientID", patient), ("StudyInstanceUID", study),
                                             ("ModalitiesInStudy", modality)) if value}
    with _answers(server, "the search for studies"):
        found = _dicom_json(server, client.search_for_studies(search_filters=filters, fields=_STUDY_FIELDS),
                            "the search for studies")
    studies = []
    for item in found:
        uid = _uid(item, "StudyInstanceUID", server)
        modalities = item.get(_TAGS["ModalitiesInStudy"], {}).get("Value") or []
        studies.append(Study(uid, str(_value(item, "PatientID")), str(_value(item, "PatientName")),
                             str(_value(item, "StudyDate")), str(_value(item, "StudyDescription")),
                             tuple(map(str, modalities)), _series_rows(client, server, uid, modality)))
    return sorted(studies, key=lambda s: (s.date, s.uid))


def pull(server: Server, study_uid: str, out_dir: str | os.PathLike, series_uids: Iterable[str] | None = None,
         progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> PullReport:
    """Retrieve the instances of a study (or of the series ``series_uids`` in it) into ``out_dir`` (see the module
    docstring). PacsError for a study or series the server does not have, or a server that fails; a series of
    the whole study that holds no instances is a note and the others are pulled, one asked for is a PacsError.
    ``progress(done, total)`` in instances; ``should_stop()`` is asked between instances (cancel: the series in
    progress is dropped, those finished stay)."""
    if not _UID.match(study_uid):
        raise PacsError(f"{study_uid!r} is not a study UID (digits and dots)")
    client = _client(server)
    found = _series_rows(client, server, study_uid, None)
    if not found:
        raise PacsError(f"study {study_uid} is not on {server.url}")
    asked = list(dict.fromkeys(series_uids)) if series_uids is not None else None
    if asked is not None:
        missing = [uid for uid in asked if uid not in {s.uid for s in found}]
        if missing:
            raise PacsError(f"series {missing[0]} is not in study {study_uid} on {server.url}")
    report = PullReport()
    plan = []
    for series in found:
        if asked is not None and series.uid not in asked:
            continue
        what = f"the search for the instances of series {series.uid}"
        with _answers(server, what):
            found_instances = _dicom_json(server, client.search_for_instances(study_uid, series.uid), what)
        instances = [_uid(item, "SOPInstanceUID", server) for item in found_instances]
        if not instances:
            note = f"series {series.uid} of study {study_uid} holds no instances on {server.url}; nothing pulled"
            if asked is not None:
                raise PacsError(note)
            report.notes.append(note)
            continue
        plan.append((series.uid, list(dict.fromkeys(instances))))
    total = sum(len(instances) for _, instances in plan)
    study_dir = Path(out_dir) / study_uid
    for series_uid, instances in plan:
        if not _pull_series(client, server, study_uid, series_uid, instances, study_dir, report, total, progress,
                            should_stop):
            report.cancelled = True
            break
    if progress and not report.cancelled:
        progress(total, total)
    return report


def _pull_series(client, server: Server, study_uid: str, series_uid: str, instances: list[str], study_dir: Path,
                 report: PullReport, total: int, progress: Progress | None,
                 should_stop: Callable[[], bool] | None) -> bool:
    """One series into ``study_dir/<series UID>``, through a hidden partial folder; False if cancelled."""
    final = study_dir / series_uid
    study_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{series_uid}.", suffix=".partial", dir=study_dir))
    try:
        for sop_uid in instances:
            if should_stop and should_stop():
                return False
            if not (final / f"{sop_uid}.dcm").is_file():
                with _answers(server, f"the retrieval of instance {sop_uid}",
                              f"instance {sop_uid} of series {series_uid} is no longer on {server.url}"):
                    dataset = client.retrieve_instance(study_uid, series_uid, sop_uid, media_types=ORIGINAL_SYNTAX)
                dataset.save_as(partial / f"{sop_uid}.dcm", enforce_file_format=True)
            report.files.append(final / f"{sop_uid}.dcm")
            if progress:
                progress(len(report.files), total)
        final.mkdir(exist_ok=True)
        for path in partial.iterdir():
            os.replace(path, final / path.name)
            report.fetched += 1
        return True
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        report.files = [p for p in report.files if p.parent != final or p.is_file()]
        for folder in (final, study_dir):  # left empty by a failed or cancelled pull
            with contextlib.suppress(OSError):
                folder.rmdir()


def push(server: Server, paths: Iterable[str | os.PathLike], progress: Progress | None = None,
         should_stop: Callable[[], bool] | None = None) -> PushReport:
    """Store DICOM files on the server, one request each: a file that is not DICOM, or that the server refuses,
    is a line in ``failed`` and the others go on; a server that cannot be reached or refuses the credentials is
    a PacsError. ``progress(done, total)`` in files; ``should_stop()`` between files."""
    paths = [Path(p) for p in paths]
    client = _client(server)
    report = PushReport()
    for done, path in enumerate(paths, 1):
        if should_stop and should_stop():
            report.cancelled = True
            break
        try:
            dataset = pydicom.dcmread(path)
            if not dataset.get("SOPInstanceUID") or not dataset.get("StudyInstanceUID"):
                raise ValueError("it has no SOP Instance UID or Study Instance UID")
        except pydicom.errors.InvalidDicomError:
            report.failed.append((path, f"{path.name}: not a DICOM file"))
            continue
        except (OSError, ValueError) as exc:
            report.failed.append((path, f"{path.name}: not a DICOM file to store ({_first_line(exc)})"))
            continue
        refused = _store(client, server, path, dataset)
        if refused:
            report.failed.append((path, refused))
        else:
            report.stored.append(path)
        if progress:
            progress(done, len(paths))
    return report


def _store(client, server: Server, path: Path, dataset) -> str | None:
    """Store one instance; the server's refusal as a line (None: stored)."""
    import requests

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answer = client.store_instances([dataset])
    except requests.exceptions.HTTPError as exc:
        if exc.response.status_code in (401, 403, 404):  # the server or the user, not this file
            raise PacsError(_http_problem(server, exc.response, "storing instances", None)) from None
        return f"{path.name}: refused by {server.url} (HTTP {exc.response.status_code} {exc.response.reason or ''})"
    except requests.exceptions.RequestException:
        with _answers(server, "storing instances"):
            raise
    failed = answer.get("FailedSOPSequence") or []
    if failed:
        reason = failed[0].get("FailureReason")
        return f"{path.name}: refused by {server.url} (failure reason {reason:#06x})" if reason is not None \
            else f"{path.name}: refused by {server.url}"
    return None
