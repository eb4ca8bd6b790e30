from django.db import migrations, models

from functions.flow_config import starts_when_claimed


def read_existing(apps, schema_editor):
    """Functions synced before this column: what their registered config says."""
    Function = apps.get_model("functions", "Function")
    for function in Function.objects.all().only("id", "config"):
        if starts_when_claimed(function.config or {}):
            Function.objects.filter(id=function.id).update(starts_when_claimed=True)


class Migration(migrations.Migration):

    dependencies = [
        ('functions', '0002_expression_failures'),
    ]

    operations = [
        migrations.AddField(
            model_name='function',
            name='starts_when_claimed',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(read_existing, migrations.RunPython.noop),
    ]
