from django.core.management.base import BaseCommand, CommandError

from shouhu.api.auth import issue_token
from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.models import User


class Command(BaseCommand):
    help = "Issue a new API bearer token for USERNAME and print it (shown once; only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        token = issue_token(user)
        record(
            actor=None,
            actor_name="manage.py",
            action=Action.TOKEN_ISSUED,
            object_type="user",
            object_id=user.pk,
            detail={"prefix": token[:12], "for": user.username},
        )
        self.stdout.write(token)
