from django.db import migrations, models


def mark_runs_with_defers(apps, schema_editor) -> None:
    Run, RunDefer = apps.get_model("runs", "Run"), apps.get_model("runs", "RunDefer")
    Run.objects.filter(id__in=RunDefer.objects.values("run_id")).update(has_defers=True)


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0011_pending_call_job_stack'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='has_defers',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_runs_with_defers, migrations.RunPython.noop),
    ]
