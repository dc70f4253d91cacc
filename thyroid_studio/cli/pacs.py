"""`thyroid-studio pacs`: find studies on a PACS over DICOMweb, pull them as files, push SEGs back.

A thin layer over engine/pacs/dicomweb.py. The password of ``--user`` comes from
$THYROID_STUDIO_PACS_PASSWORD, else it is asked for (never from an option: options are seen by other
users of the machine and kept in the shell's history); it is never printed. ``--ca-bundle`` checks a
server's TLS certificate against a hospital's own CA, ``--insecure`` skips the check.
Exit status: 0 done, 1 some files were not stored, 2 a usage error or a server that fails or refuses (the
series pulled before it stay, each whole), 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, bar_progress, print_error
from .arguments import number
from .interruption import StopRequest

BAR_DELAY_S = 1.0  # a progress bar only for transfers that take a while: a failure at once is one line alone
ACTIONS = {
    "find": "list the studies (and their series) that match",
    "pull": "retrieve a study's instances (WADO-RS) into OUT/<study UID>/<series UID>/ as DICOM files",
    "push": "store DICOM files, e.g. SEGs written by `segment --seg-out`, on the server (STOW-RS)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("url", metavar="URL", help="the DICOMweb root, e.g. http://localhost:8042/dicom-web (Orthanc)")
        sub.add_argument("--user", help="basic-auth user; the password comes from $THYROID_STUDIO_PACS_PASSWORD, "
                                        "else it is asked for")
        tls = sub.add_mutually_exclusive_group()
        tls.add_argument("--ca-bundle", type=Path, metavar="FILE",
                         help="check the server's TLS certificate against the CA certificates in FILE (PEM)")
        tls.add_argument("--insecure", action="store_true", help="do not check the server's TLS certificate")
        sub.add_argument("--timeout", type=number(0.0), default=30.0, help="seconds to wait for an answer (default 30)")
        if name == "find":
            sub.add_argument("--patient", metavar="ID", help="only this patient ID")
            sub.add_argument("--study", metavar="UID", help="only this study")
            sub.add_argument("--modality", metavar="MODALITY", help="only studies with series of this modality (US, "
                                                                    "SEG, ...), and only those series")
        if name == "pull":
            sub.add_argument("--study", required=True, metavar="UID", help="the study to retrieve")
            sub.add_argument("--series", nargs="+", metavar="UID", help="only these series of it")
            sub.add_argument("--out", required=True, type=Path, help="folder to put the study's folder in")
        if name == "push":
            sub.add_argument("files", nargs="+", type=Path, metavar="FILE",
                             help="DICOM files, or folders (their DICOM files, searched recursively)")


def run(args: argparse.Namespace) -> int:
    from ..engine.pacs.dicomweb import PacsError

    try:
        server = _server(args)
        return {"find": _find, "pull": _pull, "push": _push}[args.action](args, server)
    except PacsError as exc:
        print_error(f"pacs {args.action}", str(exc))
        return EXIT_USAGE


def _server(args: argparse.Namespace):
    from ..engine.pacs.dicomweb import PASSWORD_VARIABLE, PacsError, Server

    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise PacsError(f"--ca-bundle {args.ca_bundle}: no such file")
    verify = False if args.insecure else str(args.ca_bundle) if args.ca_bundle else True
    server = Server.from_url(args.url, args.user, None, verify, args.timeout)  # a password in the URL comes first
    if server.username and server.password is None:
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is None and not sys.stdin.isatty():
            raise PacsError(f"--user {server.username}: no password; set ${PASSWORD_VARIABLE}")
        if password is None:
            password = getpass.getpass(f"password of {server.username}: ")
        server = Server.from_url(server.url, server.username, password, verify, args.timeout)
    if args.insecure:
        print(f"warning: not checking the TLS certificate of {server.url} (--insecure)", file=sys.stderr)
    return server


def _find(args: argparse.Namespace, server) -> int:
    from ..engine.pacs.dicomweb import find

    studies = find(server, patient=args.patient, study=args.study, modality=args.modality)
    if not studies:
        print(f"no studies on {server.url} match", file=sys.stderr)
    for study in studies:
        date = f"{study.date[:4]}-{study.date[4:6]}-{study.date[6:]}" if study.date.isdigit() else study.date or "-"
        print(f"study {study.uid}  patient {study.patient_id or '-'} ({study.patient_name or 'no name'})  {date}  "
              f"{'/'.join(study.modalities) or '-'}  {study.description or ''}".rstrip())
        for series in study.series:
            count = "?" if series.instances is None else series.instances
            number = "-" if series.number is None else series.number
            print(f"  series {series.uid}  {series.modality or '-'}  #{number}  {count} instances  "
                  f"{series.description or ''}".rstrip())
    return EXIT_OK


def _pull(args: argparse.Namespace, server) -> int:
    from tqdm import tqdm

    from ..engine.io.files import output_folder_problem
    from ..engine.io.outputs import OutputPlan
    from ..engine.pacs.dicomweb import PacsError, pull

    if problem := output_folder_problem(args.out) or OutputPlan().folder_problem(args.out):  # not into a dataset
        raise PacsError(f"--out {args.out} {problem}")
    with tqdm(unit="instance", desc="pull", file=sys.stderr, dynamic_ncols=True, delay=BAR_DELAY_S) as bar:
        with StopRequest("pacs pull", "the current instance") as stop:
            report = pull(server, args.study, args.out, args.series, bar_progress(bar), should_stop=stop)
    for note in report.notes:
        print(f"warning: {note}", file=sys.stderr)
    where = args.out / args.study
    done = "interrupted after " if report.cancelled else ""
    print(f"{done}{len(report.files)} instances ({report.fetched} fetched, {len(report.files) - report.fetched} "
          f"already there) of study {args.study} in {where}", file=sys.stderr)
    return EXIT_INTERRUPTED if report.cancelled else EXIT_OK


def _push(args: argparse.Namespace, server) -> int:
    from tqdm import tqdm

    from ..engine.io.frames import find_inputs, is_dicom
    from ..engine.pacs.dicomweb import push

    given = {path for path in args.files if not path.is_dir()}
    files = [path for path in find_inputs(args.files) if path in given or is_dicom(path)]  # folders: their DICOM
    with tqdm(unit="file", desc="push", file=sys.stderr, dynamic_ncols=True, delay=BAR_DELAY_S) as bar:
        with StopRequest("pacs push", "the current file") as stop:
            report = push(server, files, bar_progress(bar), should_stop=stop)
    for _, message in report.failed:
        print(f"not stored: {message}", file=sys.stderr)
    done = "interrupted after " if report.cancelled else ""
    print(f"{done}{len(report.stored)} of {len(files)} files stored on {server.url}", file=sys.stderr)
    if report.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if report.failed else EXIT_OK
