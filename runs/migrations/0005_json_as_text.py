import core.json_text
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_concurrency_hold_keys'),
    ]

    operations = [
        migrations.AlterField(
            model_name='debounce',
            name='payload',
            field=core.json_text.JSONTextField(),
        ),
        migrations.AlterField(
            model_name='eventbatch',
            name='payloads',
            field=core.json_text.JSONTextField(default=list),
        ),
        migrations.AlterField(
            model_name='run',
            name='events',
            field=core.json_text.JSONTextField(default=list),
        ),
        migrations.AlterField(
            model_name='run',
            name='output',
            field=core.json_text.JSONTextField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='step',
            name='output',
            field=core.json_text.JSONTextField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='stepattempt',
            name='error',
            field=core.json_text.JSONTextField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='stepattempt',
            name='output',
            field=core.json_text.JSONTextField(blank=True, null=True),
        ),
    ]
