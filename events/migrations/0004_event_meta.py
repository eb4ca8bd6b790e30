from django.db import migrations

import events.json_text


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0003_json_as_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="meta",
            field=events.json_text.JSONTextField(blank=True, null=True),
        ),
    ]
