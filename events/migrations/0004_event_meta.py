from django.db import migrations

import core.json_text


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0003_json_as_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="meta",
            field=core.json_text.JSONTextField(blank=True, null=True),
        ),
    ]
