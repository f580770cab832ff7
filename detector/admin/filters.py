"""List filters for the submission admin: reviewed or not, and reviewer/machine agreement."""

from django.contrib import admin
from django.db.models import Q

from ..models import Result, Submission, reviewer_agrees

Decision = Submission.Decision
Verdict = Result.Verdict

MACHINE_REAL_REVIEWER_FAKE = Q(current_result__verdict=Verdict.REAL, review_decision=Decision.CONFIRMED_FAKE)
MACHINE_FAKE_REVIEWER_REAL = Q(current_result__verdict=Verdict.FAKE, review_decision=Decision.CONFIRMED_REAL)


class ReviewedFilter(admin.SimpleListFilter):
    title = "reviewed"
    parameter_name = "reviewed"

    def lookups(self, request, model_admin):
        return [("yes", "Reviewed"), ("no", "Not reviewed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(reviewed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(reviewed_at__isnull=True)
        return queryset


class AgreementFilter(admin.SimpleListFilter):
    """Reviewer decision against the machine's current verdict."""

    title = "reviewer vs machine"
    parameter_name = "agreement"

    CHOICES = {
        "agrees": ("Reviewer agrees with the machine", reviewer_agrees()),
        "disagrees": ("Reviewer disagrees", MACHINE_REAL_REVIEWER_FAKE | MACHINE_FAKE_REVIEWER_REAL),
        "real_but_fake": ("Machine said REAL, reviewer confirmed fake", MACHINE_REAL_REVIEWER_FAKE),
        "fake_but_real": ("Machine said FAKE, reviewer confirmed real", MACHINE_FAKE_REVIEWER_REAL),
        "uncertain": (
            "Machine UNCERTAIN, reviewer decided",
            Q(
                current_result__verdict=Verdict.UNCERTAIN,
                review_decision__in=[Decision.CONFIRMED_FAKE, Decision.CONFIRMED_REAL],
            ),
        ),
        "inconclusive": ("Reviewer inconclusive", Q(review_decision=Decision.INCONCLUSIVE)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.CHOICES.items()]

    def queryset(self, request, queryset):
        choice = self.CHOICES.get(self.value())
        return queryset.filter(choice[1]) if choice else queryset
