"""The report as a PDF for people: a first page with the verdict, then the evidence and details.

Drawn with reportlab from the signed document alone (plus the stored images it names), with an
embedded TrueType font (DejaVu, from the system's fonts) so it looks the same on every machine.
The signed JSON travels inside the PDF as an attached file, `report.json`, which
`embedded_document` reads back for `verify_report` and the verify page.
"""

import io
import logging
import re
import zlib
from datetime import datetime
from pathlib import Path

from reportlab import rl_config
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm, mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream, PDFString
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

logger = logging.getLogger(__name__)
# Binary streams, not ASCII85 text: a quarter smaller and quicker (reportlab's only switch is global;
# nothing else in this process draws PDFs).
rl_config.useA85 = 0

ATTACHMENT_NAME = "report.json"
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]
FONT_FILES = {"Body": "DejaVuSans.ttf", "Body-Bold": "DejaVuSans-Bold.ttf", "Mono": "DejaVuSansMono.ttf"}
# Without DejaVu, reportlab's standard fonts (not embedded: the viewer substitutes its own).
FALLBACK_FONTS = {"Body": "Helvetica", "Body-Bold": "Helvetica-Bold", "Mono": "Courier"}
VERDICT_COLOURS = {"FAKE": "#b02a37", "REAL": "#146c43", "UNCERTAIN": "#997404"}
INK, MUTED, RULE = colors.HexColor("#212529"), colors.HexColor("#6c757d"), colors.HexColor("#dee2e6")
WIDTH = A4[0] - 4 * cm
GRID_COLUMNS = 5
TOP_OVERLAYS = 4


def _fonts():
    """Names to draw with: DejaVu embedded when the system has it, else the standard fonts."""
    names = {}
    for alias, filename in FONT_FILES.items():
        registered = f"Report{alias}"
        if registered in pdfmetrics.getRegisteredFontNames():
            names[alias] = registered
            continue
        path = next((d / filename for d in FONT_DIRS if (d / filename).is_file()), None)
        if path is None:
            logger.warning("DejaVu fonts not found (%s): the report uses standard PDF fonts", filename)
            return dict(FALLBACK_FONTS)
        pdfmetrics.registerFont(TTFont(registered, str(path)))
        names[alias] = registered
    # <b> and <i> in paragraphs look the family up; without it they fall back to Helvetica.
    pdfmetrics.registerFontFamily(
        names["Body"],
        normal=names["Body"],
        bold=names["Body-Bold"],
        italic=names["Body"],
        boldItalic=names["Body-Bold"],
    )
    pdfmetrics.registerFontFamily(
        names["Mono"],
        normal=names["Mono"],
        bold=names["Mono"],
        italic=names["Mono"],
        boldItalic=names["Mono"],
    )
    return names


def _styles(fonts):
    body = ParagraphStyle(
        "body", fontName=fonts["Body"], fontSize=9.5, leading=13, textColor=INK, alignment=TA_LEFT
    )
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=10.5, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11),
        "mono": ParagraphStyle("mono", parent=body, fontName=fonts["Mono"], fontSize=7.5, leading=10),
        "title": ParagraphStyle("title", parent=body, fontName=fonts["Body-Bold"], fontSize=17, leading=21),
        "h2": ParagraphStyle(
            "h2",
            parent=body,
            fontName=fonts["Body-Bold"],
            fontSize=12,
            leading=16,
            spaceBefore=10,
            spaceAfter=4,
        ),
        "verdict": ParagraphStyle(
            "verdict", parent=body, fontName=fonts["Body-Bold"], fontSize=34, leading=38
        ),
        "score": ParagraphStyle("score", parent=body, fontSize=12, leading=16),
    }


def _table_style(styles, commands):
    # Every cell in our font: reportlab's default (Helvetica) would be listed, unembedded, otherwise.
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), styles["body"].fontName), *commands])


def _esc(value):
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _percent(value, places=1):
    return "–" if value is None else f"{value * 100:.{places}f}%"


def _date(iso):
    if not iso:
        return "–"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _size(count):
    if not isinstance(count, int | float):
        return "–"
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return "–"


def _facts_table(rows, styles, label_width=4.2 * cm):
    data = [
        [Paragraph(_esc(k), styles["small"]), v if not isinstance(v, str) else Paragraph(v, styles["cell"])]
        for k, v in rows
    ]
    table = Table(data, colWidths=[label_width, WIDTH - label_width])
    table.setStyle(
        _table_style(
            styles,
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ],
        )
    )
    return table


def _score_line(analysis):
    line = f"<b>{_percent(analysis['fake_probability'])}</b> probability of being fake"
    interval = analysis.get("interval")
    if interval:
        level = f", {interval['level']:.0%} range" if interval.get("level") else ""
        line += f" (likely {_percent(interval['low'], 0)} – {_percent(interval['high'], 0)}{level})"
    line += f"; the model's threshold is {_percent(analysis['threshold'], 0)}"
    return line


def _verdict_box(report, styles):
    analysis = report["analysis"]
    colour = colors.HexColor(VERDICT_COLOURS.get(analysis["verdict"], "#495057"))
    verdict = ParagraphStyle("v", parent=styles["verdict"], textColor=colour)
    cells = [
        [Paragraph(_esc(analysis["verdict"]), verdict)],
        [Paragraph(_score_line(analysis), styles["score"])],
        [Paragraph(_esc(analysis.get("uncertainty") or analysis["verdict_sentence"]), styles["body"])],
    ]
    box = Table(cells, colWidths=[WIDTH])
    box.setStyle(
        _table_style(
            styles,
            [
                ("BOX", (0, 0), (-1, -1), 1.5, colour),
                ("LINEBEFORE", (0, 0), (0, -1), 6, colour),
                ("LEFTPADDING", (0, 0), (-1, -1), 14),
                ("TOPPADDING", (0, 0), (-1, 0), 10),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 10),
            ],
        )
    )
    return box


def _failure_box(report, styles):
    colour = colors.HexColor("#495057")
    cells = [
        [
            Paragraph(
                "ANALYSIS FAILED", ParagraphStyle("v", parent=styles["verdict"], fontSize=24, leading=28)
            )
        ],
        [Paragraph(_esc(report["failure"]["message"]), styles["body"])],
        [Paragraph("No verdict was reached: this report records the attempt.", styles["small"])],
    ]
    box = Table(cells, colWidths=[WIDTH])
    box.setStyle(
        _table_style(
            styles,
            [
                ("BOX", (0, 0), (-1, -1), 1.5, colour),
                ("LEFTPADDING", (0, 0), (-1, -1), 14),
                ("TOPPADDING", (0, 0), (-1, 0), 10),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 10),
            ],
        )
    )
    return box


def _check_box(report, signature, styles):
    """How anyone can check this copy: where to upload it, and what the signature is."""
    where = report.get("verify_url")
    where = f"<b>{_esc(where)}</b>" if where else "the service's “verify a report” page"
    text = (
        "<b>Checking this report.</b> This PDF carries its signed data as an attached file "
        f"({ATTACHMENT_NAME}), signed with the service's {signature['algorithm']} key "
        f"<b>{signature['key_id']}</b>. Upload this PDF or the JSON to {where} (no account needed), "
        "or run <i>manage.py verify_report FILE</i>: it says whether the report is intact and signed by "
        "this service. The signature covers the attached data; compare its verdict, score and SHA-256 "
        "values with the pages you read."
    )
    box = Table([[Paragraph(text, styles["cell"])]], colWidths=[WIDTH])
    box.setStyle(
        _table_style(
            styles,
            [
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f1f3f5")),
                ("LEFTPADDING", (0, 0), (-1, -1), 10),
                ("RIGHTPADDING", (0, 0), (-1, -1), 10),
                ("TOPPADDING", (0, 0), (-1, -1), 8),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ],
        )
    )
    return box


def _video_rows(video, source, styles):
    resolution = (
        f"{video['width']} × {video['height']} px" if video.get("width") and video.get("height") else "–"
    )
    codec = video.get("codec") or "–"
    if video.get("file_type"):
        codec += f" ({video['file_type']} file)"
    linked = (source or {}).get("kind") == "link"
    # A link's "file name" is its host name (detector.links.submit): the source section says more.
    rows = [] if linked else [("File name (as uploaded)", _esc(video.get("original_name") or "–"))]
    if source:  # reports signed before links existed have no source
        rows.append(("Source", "fetched from a link (below)" if linked else _esc(source["description"])))
    return [
        *rows,
        ("Size", _size(video.get("size_bytes"))),
        ("Duration", f"{video['duration_seconds']:.1f} s" if video.get("duration_seconds") else "–"),
        ("Resolution", resolution),
        ("Frame rate", f"{video['frame_rate']:.2f} fps" if video.get("frame_rate") else "–"),
        ("Codec", _esc(codec)),
        ("Submitted" if linked else "Uploaded", _date(video.get("uploaded_at"))),
        (
            "SHA-256 of the file",
            Paragraph(video.get("sha256") or "not available (file deleted)", styles["mono"]),
        ),
    ]


def _source_rows(source, styles):
    """A link's provenance, as the result page lists it (presenters.provenance); only what is known."""
    rows = [
        ("Link given", source.get("url")),
        ("Final address", source.get("final_url")),
        ("Site", source.get("site")),
        ("Post id", source.get("post_id")),
        ("Title", source.get("title")),
        ("Uploader", source.get("uploader")),
    ]
    rows = [(label, _esc(value)) for label, value in rows if value]
    rows.append(("Fetched", _date(source.get("fetched_at"))))
    rows.append(
        (
            "SHA-256 of the fetched file",
            Paragraph(source.get("fetched_sha256") or "not recorded", styles["mono"]),
        )
    )
    return rows


def _model_rows(model, styles):
    figures = model.get("test_figures") or {}
    tested = "no test figures recorded with this model: nothing here says how often it is wrong"
    if figures.get("real_videos"):
        tested = f"{figures['real_videos']} real and {figures['fake_videos']} fake test videos"
        if figures.get("auc") is not None:
            tested += f"; AUC {figures['auc']:.2f}"
            if figures.get("c40_auc") is not None:
                tested += f" ({figures['c40_auc']:.2f} after heavy compression)"
        if figures.get("false_positives"):
            tested += (
                f". At its threshold: {figures['false_positives']} real videos reached it "
                f"(false positives), {figures['fakes_detected']} fakes did"
            )
    rows = [
        (
            "Model",
            _esc(model["name"]) + (f" — {_esc(model['architecture'])}" if model.get("architecture") else ""),
        ),
        ("Test figures", _esc(tested)),
        ("Model SHA-256", Paragraph(model["sha256"], styles["mono"])),
    ]
    if model.get("score_definition"):
        rows.insert(1, ("How the score is made", _esc(model["score_definition"])))
    return rows


def _chart(analysis, frames, fonts):
    """Fake probability per analysed frame of the main person, with the threshold: vector graphics."""
    points = [(f["timestamp"], f["fake_probability"]) for f in frames if f.get("person") == 1]
    points = [(t, p) for t, p in points if t is not None and p is not None]
    width, height = WIDTH, 5.2 * cm
    left, bottom, right, top = 1.2 * cm, 0.9 * cm, 0.4 * cm, 0.3 * cm
    plot_w, plot_h = width - left - right, height - bottom - top
    drawing = Drawing(width, height, initialFontName=fonts["Body"])
    drawing.add(Rect(left, bottom, plot_w, plot_h, strokeColor=RULE, fillColor=None, strokeWidth=0.5))
    for value in (0, 0.25, 0.5, 0.75, 1.0):
        y = bottom + value * plot_h
        drawing.add(Line(left, y, left + plot_w, y, strokeColor=RULE, strokeWidth=0.3))
        drawing.add(
            String(
                left - 4,
                y - 3,
                f"{value:.0%}",
                fontName=fonts["Body"],
                fontSize=7,
                fillColor=MUTED,
                textAnchor="end",
            )
        )
    if not points:
        drawing.add(
            String(
                left + plot_w / 2,
                bottom + plot_h / 2,
                "no per-frame scores",
                fontName=fonts["Body"],
                fontSize=8,
                fillColor=MUTED,
                textAnchor="middle",
            )
        )
        return drawing
    t_max = max(t for t, _ in points) or 1.0

    def xy(t, p):
        return left + (t / t_max) * plot_w, bottom + max(0.0, min(1.0, p)) * plot_h

    threshold = analysis.get("threshold")
    if threshold is not None:
        y = bottom + threshold * plot_h
        drawing.add(
            Line(
                left,
                y,
                left + plot_w,
                y,
                strokeColor=colors.HexColor("#b02a37"),
                strokeWidth=0.8,
                strokeDashArray=[3, 2],
            )
        )
        drawing.add(
            String(
                left + plot_w - 2,
                y + 2,
                f"threshold {threshold:.0%}",
                fontName=fonts["Body"],
                fontSize=7,
                fillColor=colors.HexColor("#b02a37"),
                textAnchor="end",
            )
        )
    coords = [c for t, p in points for c in xy(t, p)]
    drawing.add(PolyLine(coords, strokeColor=colors.HexColor("#0d6efd"), strokeWidth=1.2))
    for t, p in points:
        x, y = xy(t, p)
        drawing.add(Circle(x, y, 1.8, fillColor=colors.HexColor("#0d6efd"), strokeColor=None))
    for step in range(5):
        t = t_max * step / 4
        drawing.add(
            String(
                left + plot_w * step / 4,
                bottom - 10,
                f"{t:.1f} s",
                fontName=fonts["Body"],
                fontSize=7,
                fillColor=MUTED,
                textAnchor="middle",
            )
        )
    return drawing


def _image(data, width):
    """A flowable for stored image bytes at `width` (height from its aspect), or None if unreadable."""
    if not data:
        return None
    try:
        reader = ImageReader(io.BytesIO(data))
        w, h = reader.getSize()
    except Exception:  # noqa: BLE001 - any unreadable image is left out, not fatal to the report
        return None
    return Image(io.BytesIO(data), width=width, height=width * h / w)


def _crop_grid(frames, images, styles):
    cell = WIDTH / GRID_COLUMNS
    cells = []
    for frame in frames:
        picture = _image(images.get(frame["id"], (None, None))[0], cell - 6)
        caption = Paragraph(
            f"{frame['timestamp']:.2f} s · <b>{_percent(frame['fake_probability'], 0)}</b>"
            if frame.get("timestamp") is not None
            else "–",
            styles["small"],
        )
        cells.append([picture or Paragraph("(image missing)", styles["small"]), caption])
    rows = [cells[i : i + GRID_COLUMNS] for i in range(0, len(cells), GRID_COLUMNS)]
    rows = [row + [Spacer(1, 1)] * (GRID_COLUMNS - len(row)) for row in rows]
    table = Table(rows, colWidths=[cell] * GRID_COLUMNS)
    table.setStyle(
        _table_style(
            styles,
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ],
        )
    )
    return table


def _overlay_row(frames, images, styles):
    suspicious = sorted(
        (f for f in frames if images.get(f["id"], (None, None))[1] and f.get("fake_probability") is not None),
        key=lambda f: -f["fake_probability"],
    )[:TOP_OVERLAYS]
    if not suspicious:
        return None
    width = WIDTH / TOP_OVERLAYS
    pictures, captions = [], []
    for frame in suspicious:
        pictures.append(_image(images[frame["id"]][1], width - 8) or Spacer(1, 1))
        captions.append(
            Paragraph(
                f"person {frame['person']}, {frame['timestamp']:.2f} s: "
                f"{_percent(frame['fake_probability'], 0)}",
                styles["small"],
            )
        )
    table = Table([pictures, captions], colWidths=[width] * len(suspicious), hAlign="LEFT")
    table.setStyle(
        _table_style(styles, [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 4)])
    )
    return table


def _simple_table(header, rows, styles, widths):
    data = [[Paragraph(f"<b>{_esc(h)}</b>", styles["cell"]) for h in header]]
    data += [[Paragraph(_esc(c), styles["cell"]) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        _table_style(
            styles,
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -2), 0.3, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ],
        )
    )
    return table


def _attach(canvas, payload):
    """Attach the signed JSON to the document as an embedded file (uncompressed: readable as is)."""
    document = canvas._doc
    stream = PDFStream(
        PDFDictionary(
            {
                "Type": PDFName("EmbeddedFile"),
                "Subtype": "/application#2Fjson",
                "Params": PDFDictionary({"Size": len(payload)}),
            }
        ),
        content=payload,
        filters=[],
    )
    spec = PDFDictionary(
        {
            "Type": PDFName("Filespec"),
            "F": PDFString(ATTACHMENT_NAME),
            "UF": PDFString(ATTACHMENT_NAME),
            "Desc": PDFString("The signed report (verify it with the service's public key)"),
            "EF": PDFDictionary({"F": document.Reference(stream)}),
        }
    )
    document.Catalog.Names = PDFDictionary(
        {
            "EmbeddedFiles": PDFDictionary(
                {"Names": PDFArray([PDFString(ATTACHMENT_NAME), document.Reference(spec)])}
            )
        }
    )
    document.Catalog.PageMode = PDFName("UseAttachments")


def render_pdf(document, images, attachment):
    """PDF bytes for a signed document; `images` maps a frame id to (crop bytes, overlay bytes),
    `attachment` is the document's JSON file, attached as report.json."""
    report = document["report"]
    fonts = _fonts()
    styles = _styles(fonts)
    signature = document["signature"]
    submission_id = report["submission"]["id"]

    def decorate(canvas, doc):
        canvas.saveState()
        canvas.setFont(fonts["Body"], 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(2 * cm, 1.2 * cm, f"Deepfake analysis report · submission {submission_id}")
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"page {doc.page}")
        canvas.drawString(
            2 * cm,
            0.85 * cm,
            f"Signed ({signature['algorithm']}, key {signature['key_id']}); "
            f"the signed data is attached as {ATTACHMENT_NAME}.",
        )
        canvas.restoreState()

    def first_page(canvas, doc):
        _attach(canvas, attachment)
        decorate(canvas, doc)

    story = [
        Paragraph("Deepfake analysis report", styles["title"]),
        Paragraph(
            f"Generated {_date(report['generated_at'])} · software {_esc(report['software']['version'])}",
            styles["small"],
        ),
        Spacer(1, 8 * mm),
    ]
    analysis = report.get("analysis")
    if analysis:
        story += [
            _verdict_box(report, styles),
            Spacer(1, 4 * mm),
            Paragraph(_esc(analysis["score_in_context"]), styles["body"]),
        ]
        if analysis.get("score_caution"):
            story.append(Paragraph(f"<i>{_esc(analysis['score_caution'])}</i>", styles["small"]))
    else:
        story.append(_failure_box(report, styles))
    if report.get("review"):
        review = report["review"]
        story += [
            Spacer(1, 3 * mm),
            Paragraph(
                f"<b>Human review:</b> {_esc(review['decision_label'])} "
                f"by {_esc(review['reviewer'] or 'a reviewer')}, "
                f"{_date(review['reviewed_at'])}."
                + (f" “{_esc(review['note'])}”" if review.get("note") else ""),
                styles["body"],
            ),
        ]
    story += [
        Paragraph("The video", styles["h2"]),
        _facts_table(_video_rows(report["video"], report.get("source"), styles), styles),
    ]
    if (report.get("source") or {}).get("kind") == "link":
        story += [
            Paragraph("Where it came from", styles["h2"]),
            _facts_table(_source_rows(report["source"], styles), styles),
        ]
    if report.get("model"):
        story += [
            Paragraph("The model", styles["h2"]),
            _facts_table(_model_rows(report["model"], styles), styles),
        ]
    story += [
        Spacer(1, 4 * mm),
        Paragraph(_esc(report["caveat"]), styles["small"]),
        Spacer(1, 5 * mm),
        _check_box(report, signature, styles),
    ]

    if analysis:
        frames = report["evidence"]["frames"]
        story += [
            PageBreak(),
            Paragraph("What the model saw", styles["h2"]),
            Paragraph(
                "Fake probability of each analysed frame (main person), against the model's threshold.",
                styles["small"],
            ),
            _chart(analysis, frames, fonts),
        ]
        overlays = _overlay_row(frames, images, styles)
        if overlays is not None:
            story.append(
                KeepTogether(
                    [
                        Paragraph("Most suspicious frames (Grad-CAM: where the model looked)", styles["h2"]),
                        overlays,
                    ]
                )
            )
        for person in analysis["people"] or [{"person": 1}]:
            own = [f for f in frames if f.get("person") == person["person"]]
            if not own:
                continue
            title = f"Face crops, person {person['person']}" if len(analysis["people"]) > 1 else "Face crops"
            if person.get("fake_probability") is not None:
                title += f" ({_esc(person.get('verdict') or '')}, {_percent(person['fake_probability'])})"
            story += [
                Paragraph(title, styles["h2"]),
                Paragraph(
                    "Each crop as the model saw it, with its time in the video and its score.",
                    styles["small"],
                ),
                _crop_grid(own, images, styles),
            ]
        story += [Paragraph("The analysis", styles["h2"]), _facts_table(_analysis_rows(analysis), styles)]
        model = report["model"]
        rows = [("Training data", _esc(model.get("training_data") or "not recorded"))]
        if model.get("validation_metrics"):
            rows.append(
                ("Validation", _esc(", ".join(f"{k} {v}" for k, v in model["validation_metrics"].items())))
            )
        methods = [
            m for m in (model.get("test_figures") or {}).get("by_method") or [] if m.get("auc") is not None
        ]
        if methods:
            rows.append(
                (
                    "Test AUC by method",
                    _esc(", ".join(f"{m['name']} {m['auc']:.2f} ({m['fakes']} fakes)" for m in methods)),
                )
            )
        if model.get("known_weaknesses"):
            rows.append(("Known weaknesses", "<br/>".join(f"• {_esc(w)}" for w in model["known_weaknesses"])))
        story += [Paragraph("The model in detail", styles["h2"]), _facts_table(rows, styles)]
    history = report.get("history") or []
    if history:
        story += [
            KeepTogether(
                [
                    Paragraph("Every analysis of this video", styles["h2"]),
                    _simple_table(
                        ["when", "verdict", "score", "model", ""],
                        [
                            [
                                _date(h["created_at"]),
                                h["verdict"],
                                _percent(h["fake_probability"]),
                                h["model_name"],
                                "this report" if h["current"] else "",
                            ]
                            for h in history
                        ],
                        styles,
                        [3.6 * cm, 2.4 * cm, 2 * cm, WIDTH - 10.4 * cm, 2.4 * cm],
                    ),
                ]
            ),
        ]
    settings_text = ", ".join(f"{k}: {v}" for k, v in report["software"]["settings"].items() if v is not None)
    signature_text = f"{signature['algorithm']}, key {signature['key_id']}<br/>{signature['value']}"
    # Kept on one page: a signature split from its heading reads like a stray line.
    story += [
        KeepTogether(
            [
                Paragraph("Software and signature", styles["h2"]),
                _facts_table(
                    [
                        ("Software", _esc(f"{report['software']['name']} {report['software']['version']}")),
                        ("Settings", _esc(settings_text or "–")),
                        ("Generated", _date(report["generated_at"])),
                        (
                            "Signature",
                            Paragraph(signature_text, styles["mono"]),
                        ),
                    ],
                    styles,
                ),
            ]
        ),
    ]

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=1.8 * cm,
        bottomMargin=2 * cm,
        title=f"Deepfake analysis report {submission_id}",
        author="deepfake-detector",
        subject=f"Verdict: {analysis['verdict']}" if analysis else "Analysis failed",
        creator=f"deepfake-detector {report['software']['version']}",
        initialFontName=fonts["Body"],  # no unused standard font in the file
        invariant=True,  # the same bytes for the same report: no time stamps or random ids
    )
    doc.build(story, onFirstPage=first_page, onLaterPages=decorate)
    return out.getvalue()


def _or_dash(value):
    return "–" if value is None else value


def _analysis_rows(analysis):
    seconds = analysis.get("processing_seconds")
    rows = [
        (
            "Frames",
            f"{analysis.get('frames_requested') or '–'} requested, {analysis.get('frames_sampled') or '–'} "
            f"sampled, {analysis.get('frames_analysed')} face crops analysed, "
            f"{_or_dash(analysis.get('frames_without_a_face'))} frames without a face",
        ),
        (
            "Processing",
            (f"{seconds:.1f} s" if seconds is not None else "–") + f" on {analysis.get('device') or '–'}",
        ),
        ("Analysed", _date(analysis.get("analysed_at"))),
    ]
    people = analysis.get("people") or []
    if len(people) > 1:
        rows.append(
            (
                "People",
                "<br/>".join(
                    f"person {p['person']}: {_esc(p.get('verdict') or '–')} "
                    f"{_percent(p.get('fake_probability'))}"
                    f" over {p['frames']} frames"
                    + ("" if p.get("counted", True) else " (too few frames to count)")
                    for p in people
                ),
            )
        )
    if analysis.get("warnings"):
        rows.append(("Warnings", "<br/>".join(_esc(w) for w in analysis["warnings"])))
    return rows


_EMBEDDED = re.compile(rb"/Type\s*/EmbeddedFile\b")
_LENGTH = re.compile(rb"/Length\s+(\d+)")


def embedded_document(data):
    """The bytes of the attached report.json of a PDF made by render_pdf, or None."""
    match = _EMBEDDED.search(data)
    if match is None:
        return None
    start = data.rfind(b" obj", 0, match.start())  # the whole object: its dictionary nests others
    body = data.find(b"stream", match.end())
    if start < 0 or body < 0:
        return None
    dictionary = data[start:body]
    length = _LENGTH.search(dictionary)
    if length is None:
        return None
    body += len(b"stream")
    body += 2 if data[body : body + 2] == b"\r\n" else 1
    payload = data[body : body + int(length.group(1))]
    if b"/FlateDecode" in dictionary:
        try:
            payload = zlib.decompress(payload)
        except zlib.error:
            return None
    return payload
