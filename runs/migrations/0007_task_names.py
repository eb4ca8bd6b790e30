"""Beat rows carry task names; two tasks were renamed (the old names stay registered as aliases
for messages already queued). No table changes."""
from django.db import migrations

RENAMED = {"functions.fire_cron": "runs.cron_tick", "executor.sweep_due_calls": "executor.tick_timers"}


def rename(apps, schema_editor, names: dict[str, str]) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in names.items():
        PeriodicTask.objects.filter(task=old).update(task=new)


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0006_calls_without_progress"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, editor: rename(apps, editor, RENAMED),
            lambda apps, editor: rename(apps, editor, {new: old for old, new in RENAMED.items()}),
        ),
    ]
