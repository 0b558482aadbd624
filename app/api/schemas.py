"""The API's request and response shapes (marshmallow). flask-smorest validates requests with
them and apispec builds /api/v1/openapi.json from them, so the document cannot drift from the code."""
from __future__ import annotations

import json
from typing import Any

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import FileStorage

from app.api.models import SCOPES
from app.bulk import parsing
from app.bulk.services import SETTINGS
from app.bulk.views import MAX_FIXED_VALUE
from app.catalog.schema import FIELD_TYPES, FORMATS
from app.generation.options import CREATIVITY, MAX_VARIANTS
from app.generation.services import LANGUAGES, TONES
from app.webhooks.models import EVENT_TYPES

STRICT_INT: dict[str, Any] = {"strict": True}
VARIANT_TEXT_MAX = 20_000


class ProblemSchema(Schema):
    type = fields.String(required=True, metadata={"description": "Stable URI reference of the problem type"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Validation errors: field name -> messages"})
    remaining = fields.Integer(metadata={"description": "Quota: generations left this period"})
    requested = fields.Integer()
    renews_at = fields.Date(metadata={"description": "Quota: the day the period renews"})
    required_scope = fields.String()


class FieldSpecSchema(Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    required = fields.Boolean(required=True)
    max_length = fields.Integer(allow_none=True, metadata={"description": "text/textarea: at most this many characters"})
    options = fields.List(fields.String(), allow_none=True, metadata={"description": "select: the allowed values"})
    min = fields.Integer(allow_none=True)
    max = fields.Integer(allow_none=True)
    placeholder = fields.String()
    help = fields.String()


class OutputRulesSchema(Schema):
    variants = fields.Integer(required=True, metadata={"description": "Default number of variants"})
    max_chars = fields.Integer(required=True, allow_none=True)
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))


class TemplateSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    description = fields.String(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(("site", "workspace")))
    version = fields.Integer(required=True)
    fields_ = fields.List(fields.Nested(FieldSpecSchema), required=True, data_key="fields")
    output = fields.Nested(OutputRulesSchema, required=True)


class TemplateListSchema(Schema):
    data = fields.List(fields.Nested(TemplateSchema), required=True)


FIELD_VALUE = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}


class GenerationCreateSchema(Schema):
    template = fields.String(required=True, validate=validate.Length(1, 80), metadata={"description": "Template slug"})
    fields_ = fields.Dict(keys=fields.String(validate=validate.Length(1, 40)), values=fields.Raw(allow_none=True,
                          metadata=FIELD_VALUE), load_default=dict, data_key="fields",
                          metadata={"description": "The template's fields by name (see its field schema)"})
    tone = fields.String(load_default="Professional", validate=validate.OneOf(TONES))
    language = fields.String(load_default="English", validate=validate.OneOf(LANGUAGES))
    variants = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, MAX_VARIANTS),
                              metadata={"description": "Default: the template's"}, **STRICT_INT)
    creativity = fields.String(load_default="balanced", validate=validate.OneOf(tuple(CREATIVITY)))
    brand_voice_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 2**31 - 1),
                                    **STRICT_INT)


class WaitQuerySchema(Schema):
    wait = fields.Integer(load_default=0, validate=validate.Range(0, 60),
                          metadata={"description": "Seconds to wait for the result (at most 60)"})


class VariantSchema(Schema):
    id = fields.Integer(required=True)
    position = fields.Integer(required=True)
    text = fields.String(required=True)
    char_count = fields.Integer(required=True)
    over_limit = fields.Boolean(required=True)
    cut_off = fields.Boolean(required=True)
    repaired = fields.Boolean(required=True)
    favourite = fields.Boolean(required=True)
    rating = fields.Integer(required=True, validate=validate.OneOf((-1, 0, 1)))
    edited = fields.Boolean(required=True)
    original_text = fields.String(required=True, allow_none=True)


class TokenUsageSchema(Schema):
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)


class GenerationLinksSchema(Schema):
    self_ = fields.String(required=True, data_key="self")
    stream = fields.String(required=True)
    web = fields.String(required=True)


class GenerationSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("queued", "running", "succeeded", "failed")))
    template = fields.String(required=True)
    template_version = fields.Integer(required=True)
    inputs = fields.Dict(required=True)
    tone = fields.String(required=True)
    language = fields.String(required=True)
    creativity = fields.String(required=True)
    variant_count = fields.Integer(required=True)
    model = fields.String(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    usage = fields.Nested(TokenUsageSchema, required=True)
    variants = fields.List(fields.Nested(VariantSchema), required=True)
    links = fields.Nested(GenerationLinksSchema, required=True)


class GenerationListQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None, validate=validate.Length(1, 40))
    template = fields.String(load_default=None, validate=validate.Length(1, 80))
    favourite = fields.Boolean(load_default=None, metadata={"description": "Only generations with a favourite"})
    created_after = fields.AwareDateTime(load_default=None, default_timezone=None,
                                         metadata={"description": "ISO 8601 with a time zone"})


class GenerationListSchema(Schema):
    data = fields.List(fields.Nested(GenerationSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class FavouriteSchema(Schema):
    favourite = fields.Boolean(required=True)


class RatingSchema(Schema):
    rating = fields.Integer(required=True, validate=validate.OneOf((-1, 0, 1)), **STRICT_INT)


class VariantEditSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(1, VARIANT_TEXT_MAX))


class UsageQuerySchema(Schema):
    start = fields.Date(load_default=None, metadata={"description": "First day (default: the quota period's)"})
    end = fields.Date(load_default=None, metadata={"description": "Day after the last (default: the period's end)"})


class UsageFiguresSchema(Schema):
    generations = fields.Integer(required=True)
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    variants = fields.Integer(required=True)
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)


class QuotaSchema(Schema):
    scope = fields.String(required=True, validate=validate.OneOf(("you", "pool")))
    allowance = fields.Integer(required=True)
    used = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    renews_at = fields.Date(required=True)


class KeyInfoSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    display = fields.String(required=True)
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True)


class UsageSchema(Schema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    workspace = fields.Nested(UsageFiguresSchema, required=True)
    key = fields.Nested(UsageFiguresSchema, required=True)
    quota = fields.Nested(QuotaSchema, required=True, metadata={"description": "The key's charged member, now"})
    api_key = fields.Nested(KeyInfoSchema, required=True)


MAX_BULK_ROWS = 1000


class BulkRunCreateSchema(Schema):
    template = fields.String(required=True, validate=validate.Length(1, 80), metadata={"description": "Template slug"})
    rows = fields.List(fields.Dict(keys=fields.String(validate=validate.Length(1, 40)),
                                   values=fields.Raw(allow_none=True, metadata=FIELD_VALUE)),
                       required=True, validate=validate.Length(1, MAX_BULK_ROWS),
                       metadata={"description": "One object per row: the template's fields by name, plus optional "
                                                "tone, language, variants and creativity"})
    only_fitting = fields.Boolean(load_default=False,
                                  metadata={"description": "Run only the rows the remaining quota covers"})
    redo_done = fields.Boolean(load_default=False,
                               metadata={"description": "Write rows already written in an earlier run again"})


class FilePart(Upload):
    """A multipart file part (a text field of the same name is refused, not read as a file)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, FileStorage):
            raise ValidationError("Send the file as a multipart file part (curl: -F file=@products.csv).")
        return value


class JsonText(fields.String):
    """A multipart text field holding a JSON object, loaded with `schema` (documented as a string)."""

    MAX_CHARS = 100_000

    def __init__(self, schema: type[Schema], **kwargs):
        super().__init__(**kwargs)
        self.schema = schema

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.MAX_CHARS:
            raise ValidationError(f"Longer than {self.MAX_CHARS:,} characters.")
        try:
            loaded = json.loads(text)
        except ValueError:
            raise ValidationError("Not valid JSON: send a JSON object.") from None
        if not isinstance(loaded, dict):
            raise ValidationError("Send a JSON object.")
        return self.schema().load(loaded)


class CellText(fields.String):
    """Text, or an integer written as text (`"value": 2` for the variants)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs).strip()


class MappingEntrySchema(Schema):
    column = fields.String(load_default="", validate=validate.Length(0, 200),
                           metadata={"description": "The file's column (its header, exactly); wins over value"})
    value = CellText(load_default="", validate=validate.Length(0, MAX_FIXED_VALUE),
                     metadata={"description": "A fixed value for every row, when no column is given"})


class BulkMappingSchema(Schema):
    fields_ = fields.Dict(keys=fields.String(validate=validate.Length(1, 40)), values=fields.Nested(MappingEntrySchema),
                          load_default=dict, data_key="fields", attribute="fields",
                          metadata={"description": "Template field -> entry"})
    settings = fields.Dict(keys=fields.String(validate=validate.OneOf(SETTINGS)), values=fields.Nested(MappingEntrySchema),
                           load_default=dict, metadata={"description": "tone, language, variant_count, creativity"})


class SheetOptionsSchema(Schema):
    encoding = fields.String(load_default=None, validate=validate.OneOf(tuple(parsing.ENCODINGS)))
    delimiter = fields.String(load_default=None, validate=validate.OneOf(tuple(parsing.DELIMITERS)))
    header_row = fields.Integer(load_default=None, validate=validate.Range(1, parsing.HEADER_SCAN_ROWS * 10),
                                **STRICT_INT)


class BulkRunUploadSchema(Schema):
    file = FilePart(required=True, metadata={
        "description": f"The sheet: CSV (UTF-8, UTF-16 or Windows-1252; comma, semicolon or tab) or .xlsx (the first "
                       f"sheet's saved values), up to {parsing.MAX_BYTES // 1024 // 1024} MB and "
                       f"{parsing.MAX_ROWS:,} rows. The header row is found as in the browser"})
    template = fields.String(required=True, validate=validate.Length(1, 80), metadata={"description": "Template slug"})
    mapping = JsonText(BulkMappingSchema, metadata={
        "description": 'JSON object, the browser\'s mapping: {"fields": {"<field>": {"column": "<header>"} or '
                       '{"value": "<fixed text>"}}, "settings": {"tone"|"language"|"variant_count"|"creativity": '
                       'the same}}. Entries left out are matched as the browser pre-fills its mapping screen (by '
                       'column name, or the workspace\'s saved mapping); the mapping used is remembered likewise',
        "example": '{"fields": {"product": {"column": "Name"}, "audience": {"value": "Coffee lovers"}}}'})
    options = JsonText(SheetOptionsSchema, metadata={
        "description": 'JSON object correcting what is detected: {"encoding": "utf-8"|"utf-8-sig"|"utf-16"|"cp1252", '
                       '"delimiter": ","|";"|"\\t", "header_row": <spreadsheet row of the headers>}',
        "example": '{"delimiter": ";", "header_row": 2}'})
    only_fitting = fields.Boolean(load_default=False,
                                  metadata={"description": "Run only the rows the remaining quota covers"})
    redo_done = fields.Boolean(load_default=False,
                               metadata={"description": "Write rows already written in an earlier run again"})


class BulkCountsSchema(Schema):
    done = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    skipped = fields.Integer(required=True)
    remaining = fields.Integer(required=True)


class BulkLinksSchema(Schema):
    self_ = fields.String(required=True, data_key="self")
    results_csv = fields.String(required=True)
    results_xlsx = fields.String(required=True)
    web = fields.String(required=True)


class BulkRunSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("running", "paused", "cancelled", "finished")))
    template = fields.String(required=True)
    total_rows = fields.Integer(required=True)
    counts = fields.Nested(BulkCountsSchema, required=True)
    message = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    links = fields.Nested(BulkLinksSchema, required=True)


class WebhookEndpointCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(1, 2000),
                        metadata={"description": "HTTPS URL on a public address (checked again at delivery)"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         validate=validate.Length(1, len(EVENT_TYPES)))
    description = fields.String(load_default="", validate=validate.Length(0, 200))


class WebhookEndpointSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    enabled = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    secret = fields.String(metadata={"description": "The signing secret: only in the create response"})


class WebhookEndpointListSchema(Schema):
    data = fields.List(fields.Nested(WebhookEndpointSchema), required=True)


class WebhookDeliverySchema(Schema):
    id = fields.Integer(required=True)
    event_id = fields.String(required=True, metadata={"description": "The event's `evt_` id (same on redelivery)"})
    event_type = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    status_code = fields.Integer(required=True, allow_none=True)
    response_ms = fields.Integer(required=True, allow_none=True)
    response_excerpt = fields.String(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    redelivery_of = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    last_attempt_at = fields.DateTime(required=True, allow_none=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)


class WebhookDeliveryListSchema(Schema):
    data = fields.List(fields.Nested(WebhookDeliverySchema), required=True)
