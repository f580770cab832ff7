"""The "reviewer" group: staff in it can see submissions, results and models and record reviews."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "reviewer"
PERMISSIONS = [
    "view_submission",
    "review_submission",
    "view_result",
    "view_frameimage",
    "view_detectormodel",
]


def create_reviewer_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); on a fresh database
    # they do not exist yet, so create them here first.
    app_config = apps.get_app_config("detector")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    permissions = Permission.objects.filter(content_type__app_label="detector", codename__in=PERMISSIONS)
    group.permissions.add(*permissions)


def remove_reviewer_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("detector", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_reviewer_group, remove_reviewer_group),
    ]
