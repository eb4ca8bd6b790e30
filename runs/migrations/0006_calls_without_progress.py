from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0005_json_as_text'),
    ]

    operations = [
        migrations.AddField(
            model_name='pendingcall',
            name='calls_without_progress',
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
