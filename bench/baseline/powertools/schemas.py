"""JSON Schema of a signup body, for Powertools' validation utility (fastjsonschema underneath).

The same rules as crates/domain/src/signup.rs, as far as a schema can say them; the handler trims
`email` and `name` before validating, as the Rust parser does. Not reproduced: the zero-width
joiner and non-joiner are accepted anywhere (Rust keeps them only between two visible non-ASCII
characters), repeated JSON keys are not detected (json.loads keeps the last), and only the first
invalid field is reported (fastjsonschema stops at the first error; Rust names every one).
"""

# A deliberate subset of RFC 5321, like EmailAddress::parse: a local part of 1-64 allowed characters
# with no leading, trailing or doubled dot; two or more DNS labels of 1-63 letters, digits and inner
# hyphens; a top-level label of 2+ characters, not all digits; the domain at most 253 characters.
# (`\$` in the class: fastjsonschema turns every unescaped `$` into `\Z`, which a class refuses.)
EMAIL = (
    r"^(?!\.)(?!.*\.\.)[A-Za-z0-9!#\$%&'*+/=?^_`{|}~.-]{1,64}(?<!\.)@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?![0-9]+$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])$"
)

# DisplayName::parse refuses control characters and line breaks, bidirectional controls and
# invisible format characters (they forge or hide text where the name is shown).
NAME = (
    "^[^"
    "\u0000-\u001f\u007f-\u009f\u2028\u2029"  # control characters, line and paragraph separators
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional controls
    "\u00ad\u115f\u1160\u17b4\u17b5\u180e\u200b\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0"
    "\ufff9-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"  # invisible
    "]+$"
)

SIGNUP = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["user_id", "email", "name"],
    "properties": {
        "user_id": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
        "email": {"type": "string", "maxLength": 254, "pattern": EMAIL},
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NAME},
    },
}
