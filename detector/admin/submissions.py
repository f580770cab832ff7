"""The submission review panel: the machine's output read-only, the human review editable, re-runs
and a CSV export.

Reviews need the `detector.review_submission` permission (the "reviewer" group has it, from a data
migration); the machine's output is never editable here.
"""

import csv
import uuid

from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from ml_core.inference.score import SCORE_DEFINITION

from .. import presenters
from ..charts import frame_probability_svg
from ..models import DetectorModel, Result, Submission
from . import display
from .filters import AgreementFilter, ReviewedFilter
from .forms import RerunForm

REVIEW_FIELDS = ("review_decision", "review_notes")
# Where a link submission's video came from (detector.links): shown, never edited, on its page only.
SOURCE_FIELDSET = (
    "Source (fetched from a link)",
    {
        "fields": (
            "source_url",
            "source_final_url",
            "source_site",
            "source_post_id",
            "source_title",
            "source_uploader",
            "fetched_at",
            "fetched_sha256",
        )
    },
)

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class ResultHistoryInline(admin.TabularInline):
    """Every run of the detector on this submission, newest first; read-only."""

    model = Result
    fk_name = "submission"
    verbose_name = "analysis run"
    verbose_name_plural = "Results history"
    extra = 0
    can_delete = False
    fields = ("created_at", "verdict", "probability", "model_label", "device", "is_current")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="P(fake)")
    def probability(self, result):
        return display.probability(result.fake_probability)

    @admin.display(description="model")
    def model_label(self, result):
        return display.model_label(result)

    @admin.display(description="current", boolean=True)
    def is_current(self, result):
        return result.submission.current_result_id == result.pk

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("submission")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "original_name_display",
        "owner",
        "created",
        "status",
        "verdict",
        "fake_probability",
        "model_column",
        "reviewed",
        "review_decision",
    )
    list_display_links = ("original_name_display",)
    list_filter = (
        "status",
        ("current_result__verdict", admin.ChoicesFieldListFilter),
        ReviewedFilter,
        "review_decision",
        AgreementFilter,
        ("current_result__detector", admin.RelatedFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("owner__username", "owner__email", "original_name")
    search_help_text = "Owner user name or email, original file name, or a public id."
    list_select_related = ("owner", "current_result", "current_result__detector")
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over the whole table on every filtered page
    ordering = ("-created_at", "-id")
    actions = ("rerun_selected", "mark_reviewed", "export_csv")
    inlines = (ResultHistoryInline,)
    fieldsets = (
        (
            "Submission",
            {
                "fields": (
                    "public_id",
                    "owner",
                    "original_name",
                    "source",
                    "video_link",
                    "size_bytes",
                    "duration_seconds",
                    "frames_requested",
                    "requested_detector",
                    "created_at",
                    "media_purged_at",
                )
            },
        ),
        (
            "Processing",
            {
                "fields": (
                    "status",
                    "stage",
                    "progress",
                    "attempts",
                    "enqueued_at",
                    "dispatched_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "error_message",
                )
            },
        ),
        (
            "Machine verdict (current result)",
            {
                # The same words as the result page, the API and the command line.
                "description": SCORE_DEFINITION,
                "fields": (
                    "verdict",
                    "fake_probability",
                    "likely_range",
                    "model_used",
                    "device",
                    "frame_chart",
                    "identities_table",
                    "face_images",
                ),
            },
        ),
        (
            "Per-frame numbers and timings",
            {"classes": ("collapse",), "fields": ("frame_table", "timings_table")},
        ),
        ("Human review", {"fields": ("review_decision", "review_notes", "reviewed_by", "reviewed_at")}),
    )

    # --- permissions: reviews need detector.review_submission; nothing is added here ---

    def has_add_permission(self, request):
        return False

    def has_review_permission(self, request, obj=None):
        return request.user.has_perm("detector.review_submission")

    def has_change_permission(self, request, obj=None):
        # The only editable fields are the review ones, so "change" means "review".
        return self.has_review_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None or not obj.source_url:
            return self.fieldsets
        return (self.fieldsets[0], SOURCE_FIELDSET, *self.fieldsets[1:])

    def get_readonly_fields(self, request, obj=None):
        names = [name for fieldset in (*self.fieldsets, SOURCE_FIELDSET) for name in fieldset[1]["fields"]]
        return [name for name in names if name not in REVIEW_FIELDS]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "current_result", "reviewed_by")

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            public_id = uuid.UUID(search_term.strip())
        except ValueError:
            return results, may_have_duplicates
        return results | queryset.filter(public_id=public_id), may_have_duplicates

    def save_model(self, request, obj, form, change):
        changed = [name for name in REVIEW_FIELDS if name in form.changed_data]
        if not changed:
            return
        obj.reviewed_by = request.user
        obj.reviewed_at = timezone.now()
        # Only the review columns: a worker may be writing status/progress on this row right now.
        obj.save(update_fields=[*REVIEW_FIELDS, "reviewed_by", "reviewed_at", "updated_at"])

    def delete_model(self, request, obj):
        from ..services import delete_submission

        delete_submission(obj)

    def delete_queryset(self, request, queryset):
        from ..services import delete_submission

        for submission in queryset:
            delete_submission(submission)

    # --- list columns (no queries: everything comes from list_select_related) ---

    @admin.display(description="original name", ordering="original_name")
    def original_name_display(self, obj):
        return obj.original_name or f"(no name) {obj.public_id}"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return display.moment(obj.created_at)

    @admin.display(description="verdict", ordering="current_result__verdict")
    def verdict(self, obj):
        return obj.current_result.verdict if obj.current_result else "—"

    @admin.display(description="P(fake)", ordering="current_result__fake_probability")
    def fake_probability(self, obj):
        return display.probability(obj.current_result.fake_probability) if obj.current_result else "—"

    @admin.display(description="likely range")
    def likely_range(self, obj):
        result = obj.current_result
        interval = presenters.interval_of(result) if result else None
        if interval is None:
            return "—"
        return f"{display.probability(interval[0])}–{display.probability(interval[1])}"

    @admin.display(description="model")
    def model_used(self, obj):
        return display.model_label(obj.current_result) if obj.current_result else "—"

    @admin.display(description="model")
    def model_column(self, obj):
        # The list's column: the name alone (the SHA-256 prefix on hover), so the table fits.
        result = obj.current_result
        if not result:
            return "—"
        return format_html('<span title="{}">{}</span>', display.model_label(result), result.model_name)

    @admin.display(description="reviewed", boolean=True, ordering="reviewed_at")
    def reviewed(self, obj):
        return obj.reviewed_at is not None

    # --- detail page: the machine's output, read-only ---

    @admin.display(description="device")
    def device(self, obj):
        return obj.current_result.device if obj.current_result else "—"

    @admin.display(description="source")
    def source(self, obj):
        return "fetched from a link (below)" if obj.source_url else "uploaded file"

    @admin.display(description="video")
    def video_link(self, obj):
        if obj.media_purged_at:
            return "The video file has been deleted (media retention)."
        if not obj.video:
            return "No video file is stored."
        url = display.media_url("submission-video", public_id=obj.public_id)
        if url is None:
            return "The media view is not installed."
        return format_html('<a href="{}" target="_blank" rel="noopener">Play the video</a>', url)

    @admin.display(description="per-frame chart")
    def frame_chart(self, obj):
        result = obj.current_result
        if not result:
            return "—"
        details = result.details or {}
        # The main person's score and likely range as lines, as on the result page.
        main = next(
            (
                i
                for i in result.identities or []
                if isinstance(i, dict) and i.get("id") == details.get("main_identity")
            ),
            {},
        )
        chart = frame_probability_svg(
            result.frame_probabilities,
            result.frame_timestamps,
            threshold=details.get("threshold", 0.5),
            score=main.get("fake_probability"),
            interval=main.get("interval"),
        )
        if not chart:
            return "—"
        # A read-only cell is only as wide as its content, and the SVG's width is a percentage.
        return format_html('<div style="width: 720px; max-width: 100%">{}</div>', chart)

    @admin.display(description="per-frame fake probability")
    def frame_table(self, obj):
        result = obj.current_result
        if not result or not result.frame_probabilities:
            return "—"
        timestamps = list(result.frame_timestamps) + [None] * len(result.frame_probabilities)
        rows = [
            (i + 1, "—" if t is None else f"{t:.2f} s", display.probability(p))
            for i, (p, t) in enumerate(zip(result.frame_probabilities, timestamps))
        ]
        return display.table(("#", "time", "P(fake)"), rows)

    @admin.display(description="per-identity results")
    def identities_table(self, obj):
        result = obj.current_result
        if not result or not result.identities:
            return "—"
        rows = [
            (
                identity.get("id", "?"),
                identity.get("label", "?"),
                display.probability(identity.get("fake_probability")),
                len(identity.get("frame_probabilities") or []),
            )
            for identity in result.identities
            if isinstance(identity, dict)
        ]
        return display.table(("identity", "verdict", "P(fake)", "frames"), rows)

    @admin.display(description="timings")
    def timings_table(self, obj):
        result = obj.current_result
        if not result or not result.timings:
            return "—"
        rows = [
            (stage, f"{seconds:.2f} s" if isinstance(seconds, int | float) else seconds)
            for stage, seconds in result.timings.items()
        ]
        return display.table(("stage", "seconds"), rows)

    @admin.display(description="face crops and Grad-CAM overlays")
    def face_images(self, obj):
        result = obj.current_result
        if not result:
            return "—"
        if obj.media_purged_at:
            return "The face images have been deleted."
        cells = []
        for frame in result.frames.all():
            images = []
            for kind, field in (("crop", frame.crop), ("overlay", frame.overlay)):
                url = display.media_url(
                    "submission-frame-image", public_id=obj.public_id, frame_id=frame.pk, kind=kind
                )
                if field and url:
                    images.append(
                        format_html(
                            '<img src="{}" alt="{} of frame {}" width="112" height="112">',
                            url,
                            kind,
                            frame.frame_index,
                        )
                    )
            caption = format_html(
                "identity {} · frame {} · {} s · P(fake) {}",
                frame.identity,
                frame.frame_index,
                f"{frame.timestamp:.2f}",
                display.probability(frame.fake_probability),
            )
            cells.append(
                format_html(
                    '<figure style="display:inline-block;margin:4px">{}<figcaption>{}</figcaption></figure>',
                    mark_safe("".join(images)),  # noqa: S308 - each part was built with format_html
                    caption,
                )
            )
        return mark_safe("".join(cells)) if cells else "No face images stored."  # noqa: S308 - format_html parts

    # --- actions ---

    @admin.action(description="Re-run analysis on selected submissions", permissions=["review"])
    def rerun_selected(self, request, queryset):
        form = RerunForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            from ..services import rerun_analysis

            detector = form.cleaned_data["detector"]
            rerun, busy, purged = 0, 0, 0
            for submission in queryset:
                try:
                    queued = rerun_analysis(submission, detector=detector)
                except ValueError:  # its video was purged
                    purged += 1
                    continue
                rerun, busy = rerun + queued, busy + (not queued)
            model = str(detector) if detector else "the active model"
            self.message_user(request, f"Queued {rerun} submission(s) for a new analysis with {model}.")
            if busy:
                self.message_user(
                    request,
                    f"Skipped {busy} submission(s) not finished yet (fetching, queued or running).",
                    messages.WARNING,
                )
            if purged:
                self.message_user(
                    request, f"Skipped {purged} submission(s) whose video has been deleted.", messages.WARNING
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-run analysis",
            "opts": self.model._meta,
            "form": form,
            "submissions": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "active_model": DetectorModel.active(),
        }
        return TemplateResponse(request, "admin/detector/submission/rerun.html", context)

    @admin.action(description="Mark selected submissions as reviewed", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        count = queryset.filter(reviewed_at__isnull=True).update(
            reviewed_by=request.user, reviewed_at=timezone.now(), updated_at=timezone.now()
        )
        self.message_user(request, f"Marked {count} submission(s) as reviewed.")

    @admin.action(description="Export selected submissions as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        rows = queryset.select_related("owner", "current_result", "reviewed_by").order_by(
            "-created_at", "-id"
        )
        response = StreamingHttpResponse(
            (line for line in csv_lines(rows)), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="submissions-{stamp}.csv"'
        return response


CSV_HEADER = [
    "public_id",
    "owner",
    "owner_email",
    "original_name",
    "created_at",
    "finished_at",
    "status",
    "verdict",
    "fake_probability",
    "model_name",
    "model_sha256",
    "review_decision",
    "reviewed_by",
    "reviewed_at",
    "review_notes",
    "error_message",
]


class _Echo:
    def write(self, value):
        return value


def _iso(value):
    return value.isoformat() if value else ""


def csv_lines(submissions):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for sub in submissions.iterator(chunk_size=1000):
        result = sub.current_result
        row = [
            str(sub.public_id),
            sub.owner.username,
            sub.owner.email,
            sub.original_name,
            _iso(sub.created_at),
            _iso(sub.finished_at),
            sub.status,
            result.verdict if result else "",
            f"{result.fake_probability:.6f}" if result else "",
            result.model_name if result else "",
            result.model_sha256 if result else "",
            sub.review_decision,
            sub.reviewed_by.username if sub.reviewed_by else "",
            _iso(sub.reviewed_at),
            sub.review_notes,
            sub.error_message,
        ]
        yield writer.writerow([csv_safe(cell) for cell in row])
