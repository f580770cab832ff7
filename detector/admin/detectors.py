"""Detector models: upload and register a checkpoint, activate it, and see how often reviewers agree.

Models are registered and activated through detector.registry, so the admin and
`manage.py install_detector` validate checkpoints the same way.
"""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q
from django.template.defaultfilters import filesizeformat

from ml_core.model.test_figures import summary

from ..models import DetectorModel, Submission, reviewer_agrees
from . import display
from .forms import DetectorModelChangeForm, DetectorModelUploadForm

Decision = Submission.Decision

REVIEWED_DECISIVE = Q(
    results__submission__review_decision__in=[Decision.CONFIRMED_FAKE, Decision.CONFIRMED_REAL]
)
MODEL_AGREES = reviewer_agrees("results__verdict", "results__submission__review_decision")


@admin.register(DetectorModel)
class DetectorModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "sha256_prefix",
        "is_active",
        "sequence_length",
        "size",
        "created_at",
        "judged",
        "agreement",
    )
    list_filter = ("is_active",)
    show_full_result_count = False
    search_fields = ("name", "=sha256", "notes")
    ordering = ("-created_at",)
    actions = ("activate_selected",)
    readonly_fields = (
        "sha256",
        "is_active",
        "checkpoint",
        "size",
        "sequence_length",
        "config_display",
        "metrics_display",
        "created_at",
        "judged",
        "agreement",
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = DetectorModelChangeForm if obj is not None else DetectorModelUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("checkpoint_file", "name", "notes", "activate")}),)
        return (
            (None, {"fields": ("name", "notes", "is_active", "created_at")}),
            ("Checkpoint", {"fields": ("sha256", "checkpoint", "size", "sequence_length")}),
            ("Recorded at install", {"fields": ("config_display", "metrics_display")}),
            ("Use", {"fields": ("judged", "agreement")}),
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                judged_count=Count("results__submission", distinct=True),
                reviewed_count=Count("results__submission", filter=REVIEWED_DECISIVE, distinct=True),
                agreed_count=Count(
                    "results__submission",
                    filter=MODEL_AGREES,
                    distinct=True,
                ),
            )
        )

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            obj.save()
            if not change and form.cleaned_data.get("activate"):
                from ..registry import activate_detector

                activate_detector(obj)

    def delete_model(self, request, obj):
        checkpoint = obj.checkpoint
        super().delete_model(request, obj)
        transaction.on_commit(lambda: checkpoint.delete(save=False))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(description="Activate the selected model for new analyses", permissions=["change"])
    def activate_selected(self, request, queryset):
        models = list(queryset[:2])
        if len(models) != 1:
            self.message_user(request, "Select exactly one model to activate.", messages.ERROR)
            return
        from ..registry import activate_detector

        activate_detector(models[0])
        self.message_user(request, f"{models[0]} is now the active model; new analyses use it.")

    @admin.display(description="SHA-256")
    def sha256_prefix(self, obj):
        return obj.sha256[:12]

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)

    @admin.display(description="submissions judged", ordering="judged_count")
    def judged(self, obj):
        return getattr(obj, "judged_count", 0)

    @admin.display(description="agreement with reviewers", ordering="agreed_count")
    def agreement(self, obj):
        reviewed = getattr(obj, "reviewed_count", 0)
        if not reviewed:
            return "no reviews yet"
        agreed = obj.agreed_count
        return f"{agreed}/{reviewed} ({agreed / reviewed:.0%})"

    @admin.display(description="config")
    def config_display(self, obj):
        return display.table(("key", "value"), sorted((k, str(v)) for k, v in (obj.config or {}).items()))

    @admin.display(description="metrics")
    def metrics_display(self, obj):
        if not obj.metrics:
            return "—"
        rows = sorted(
            (k, summary(v) if k == "test_scores" and isinstance(v, dict) else str(v))
            for k, v in obj.metrics.items()
        )
        return display.table(("metric", "value"), rows)
