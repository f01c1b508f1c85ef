"""Read composed messages the way a stranger's software would.

Usage: read_mail.py FILE...  Prints one JSON object per file, a list in
argument order. For each of Python's two email policies it reports the To
and Cc addresses and every leaf part: its media type, its decoded content
(text parts), get_filename() and the Content-Type "name" parameter.

policy.default decodes headers and parameters itself. compat32 hands back
raw values; its own helpers decode them, as a compat32 program would:
email.header.decode_header for RFC 2047 encoded-words and
email.utils.collapse_rfc2231_value for RFC 2231 values.
"""
import email
import email.utils
import json
import sys
from email import policy
from email.header import decode_header, make_header


def compat32_text(value):
    if value is None:
        return None
    if isinstance(value, tuple):
        return email.utils.collapse_rfc2231_value(value)
    return str(make_header(decode_header(value)))


def addresses(msg, field, pol):
    if pol is policy.default:
        header = msg[field]
        if header is None:
            return []
        return [[a.display_name, a.addr_spec] for a in header.addresses]
    values = msg.get_all(field, [])
    return [[compat32_text(name), addr] for name, addr in email.utils.getaddresses(values)]


def parts(msg, pol):
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        item = {"type": part.get_content_type(), "filename": part.get_filename()}
        if pol is policy.default:
            item["name"] = part["content-type"].params.get("name") if part["content-type"] else None
            if part.get_content_maintype() == "text":
                item["content"] = part.get_content()
        else:
            item["name"] = compat32_text(part.get_param("name"))
            if part.get_content_maintype() == "text":
                charset = part.get_content_charset() or "us-ascii"
                item["content"] = part.get_payload(decode=True).decode(charset)
        item["defects"] = [type(d).__name__ for d in part.defects]
        out.append(item)
    return out


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    result = {}
    for label, pol in (("default", policy.default), ("compat32", policy.compat32)):
        msg = email.message_from_bytes(raw, policy=pol)
        result[label] = {
            "to": addresses(msg, "To", pol),
            "cc": addresses(msg, "Cc", pol),
            "to_fields": len(msg.get_all("To", [])),
            "parts": parts(msg, pol),
            "defects": [type(d).__name__ for d in msg.defects],
        }
    return result


json.dump([read(p) for p in sys.argv[1:]], sys.stdout)
