import core.json_text
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0002_event_keys'),
    ]

    operations = [
        migrations.AlterField(
            model_name='event',
            name='data',
            field=core.json_text.JSONTextField(default=dict),
        ),
        migrations.AlterField(
            model_name='event',
            name='user',
            field=core.json_text.JSONTextField(default=dict),
        ),
    ]
