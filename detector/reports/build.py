"""A submission's report, signed, as JSON and as PDF: the one entry point for views and commands."""

from dataclasses import dataclass
from pathlib import Path

from ml_core.io import atomic_write

from ..models import FrameImage
from .content import build_content
from .pdf import render_pdf
from .signing import document_bytes, sign


@dataclass
class Report:
    document: dict
    submission_id: str

    @property
    def json_bytes(self):
        return document_bytes(self.document)

    def pdf_bytes(self):
        return render_pdf(self.document, stored_images(self.document), self.json_bytes)

    def file_name(self, extension):
        return f"report-{self.submission_id}.{extension}"


def _read(field):
    if not field:
        return None
    try:
        with field.open("rb") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None
    finally:
        field.close()


def stored_images(document):
    """(crop, overlay) bytes for each frame the signed report lists, read through the storage API."""
    frames = (document["report"].get("evidence") or {}).get("frames") or []
    ids = [f["id"] for f in frames]
    return {row.pk: (_read(row.crop), _read(row.overlay)) for row in FrameImage.objects.filter(pk__in=ids)}


def build_report(submission, verify_url=None):
    """The signed report of a done or failed submission (content.ReportNotReady otherwise)."""
    return Report(sign(build_content(submission, verify_url=verify_url)), str(submission.public_id))


def write_report_files(submission, folder):
    """Write report-<id>.pdf and report-<id>.json into `folder` (created); returns both paths.

    The file names come from the submission's UUID, never from the uploaded name.
    """
    report = build_report(submission)  # first: an unfinished one leaves no empty folder behind
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, data in (("pdf", report.pdf_bytes()), ("json", report.json_bytes)):
        path = folder / report.file_name(kind)
        with atomic_write(path) as handle:
            handle.write(data)
        paths.append(path)
    return paths
