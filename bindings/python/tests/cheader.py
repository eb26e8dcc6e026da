"""A reader of include/diffclip.h's declarations, enough for its regular style: number and
string macros, enums, structs, opaque structs, function-pointer typedefs and DC_API
prototypes. test_header.py compares them with the binding's ctypes declarations."""

import re
from collections import namedtuple

# base: the type name ("char", "dc_tensor"); const: whether the base is const; pointers:
# for each '*', whether that pointer itself is const; array: the length text or None.
CType = namedtuple("CType", "base const pointers array")
Function = namedtuple("Function", "name result params")   # params: [(name, CType)]
Header = namedtuple("Header", "macros enums structs opaque callbacks functions")

_DECLARATOR = re.compile(r"^((?:\*\s*(?:const\b)?\s*)*)(\w+)?\s*(?:\[\s*(\w*)\s*\])?$")


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _split_spec(decl):
    """'const char *const *texts' -> ('const char', '*const *texts')."""
    m = re.match(r"\s*((?:const\s+)?\w+(?:\s+const\b)?)\s*(.*?)\s*$", decl, re.S)
    if not m:
        raise ValueError("cannot read declaration %r" % decl)
    return m.group(1), m.group(2)


def _ctype(spec, declarator, what):
    words = spec.split()
    const = "const" in words
    base = " ".join(w for w in words if w != "const")
    m = _DECLARATOR.match(declarator.strip())
    if not m:
        raise ValueError("cannot read declarator %r in %s" % (declarator, what))
    stars, name, array = m.groups()
    pointers = tuple(bool(c) for c in re.findall(r"\*\s*(const)?", stars))
    return name, CType(base, const, pointers, array)


def _declaration(text, what):
    spec, declarator = _split_spec(text)
    return _ctype(spec, declarator, what)


def _struct_fields(body, struct):
    fields = []
    for member in filter(None, (m.strip() for m in body.split(";"))):
        first, *rest = member.split(",")
        spec, declarator = _split_spec(first)
        for d in [declarator] + rest:
            fields.append(_ctype(spec, d, struct))
    return fields


def _params(text, function):
    text = text.strip()
    if text == "void":
        return []
    return [_declaration(p, function) for p in text.split(",")]


def parse(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    text = _strip_comments(raw).replace("\\\n", " ")   # a macro continued is one line
    macros = {}
    for name, value in re.findall(r"^\s*#\s*define\s+(DC_\w+)[ \t]+(\S.*?)\s*$", text, re.M):
        if re.fullmatch(r"-?\d+", value):
            macros[name] = int(value)
        elif re.fullmatch(r"-?\d+\.\d*", value):
            macros[name] = float(value)
        elif re.fullmatch(r'"[^"]*"', value):
            macros[name] = value[1:-1]
    code = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    code = re.sub(r'extern\s+"C"\s*\{|^\s*\}\s*$', " ", code, flags=re.M)

    enums = {}
    for name, body in re.findall(r"typedef\s+enum\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", code, re.S):
        values, following = {}, 0
        for item in filter(None, (i.strip() for i in body.split(","))):
            key, _, value = (s.strip() for s in item.partition("="))
            following = int(value) if value else following
            values[key] = following
            following += 1
        enums[name] = values

    structs = {name: _struct_fields(body, name) for name, body in re.findall(
        r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", code, re.S)}
    opaque = re.findall(r"typedef\s+struct\s+(\w+)\s+\1\s*;", code)

    callbacks = {}
    for result, name, params in re.findall(
            r"typedef\s+([^;(]*?)\s*\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\)\s*;", code):
        callbacks[name] = Function(name, _declaration(result, name)[1], _params(params, name))

    functions = []
    for result, name, params in re.findall(r"\bDC_API\s+([^;(]*?)\b(\w+)\s*\(([^;]*?)\)\s*;",
                                           code, re.S):
        functions.append(Function(name, _declaration(result, name)[1], _params(params, name)))
    if not functions:
        raise ValueError("%s: no DC_API prototypes found" % path)
    return Header(macros, enums, structs, opaque, callbacks, functions)
