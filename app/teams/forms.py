"""Team management forms."""
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from app.auth.forms import PASSWORD_RULES
from app.bounds import WholeNumberField


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=[SelectChoice("member", "Member"), SelectChoice("admin", "Admin")],
                       default="member")


class CapForm(FlaskForm):
    cap = WholeNumberField("Monthly cap", validators=[Optional()])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice("member", "Member"), SelectChoice("admin", "Admin")])


class WorkspaceForm(FlaskForm):
    name = StringField("Workspace name", validators=[DataRequired(), Length(max=120)])


class QuotaModeForm(FlaskForm):
    quota_mode = SelectField("Quota mode", choices=[
        SelectChoice("per_seat", "Per seat: every member has the seat quota"),
        SelectChoice("pooled", "Pooled: seats × quota, shared by everyone"),
    ])


class DeleteWorkspaceForm(FlaskForm):
    confirm_name = StringField("Type the workspace's name to confirm", validators=[DataRequired()])


class TransferForm(FlaskForm):
    membership_id = SelectField("New owner", coerce=int, validate_choice=True)


class InvitationSignupForm(FlaskForm):
    password = PasswordField("Choose a password", validators=PASSWORD_RULES)
    confirm = PasswordField("Confirm password",
                            validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")])
