#!/usr/bin/python3
"""Writes src/nn/tokenizer_tables.c: the Unicode and HTML tables of the CLIP tokenizer.

Run by `make unicode-tables` (the output is committed, so that a build needs neither Python
nor unicode-data, and the tables stay those of the reference: Unicode 15.0 as Debian 12's
unicode-data and the `regex` module 2022.10.31 have it, and Python 3.11's html module).

Sources:
  UNICODE_DIR/UnicodeData.txt          general categories, bidi classes, simple lowercase
  UNICODE_DIR/SpecialCasing.txt        unconditional full lowercase mappings (U+0130)
  UNICODE_DIR/PropList.txt             White_Space (the `regex` module's \\s)
  UNICODE_DIR/DerivedCoreProperties.txt  Cased, Case_Ignorable (str.lower's final sigma)
  UNICODE_DIR/CaseFolding.txt          simple case folding (the pattern's IGNORECASE)
  the running interpreter's html module  html5 entities, _invalid_charrefs, _invalid_codepoints

Usage: gen_tokenizer_tables.py [UNICODE_DIR] > src/nn/tokenizer_tables.c
"""
import html
import html.entities
import os
import re
import sys

LOWER_MAX = 3  # must match NN_LOWER_MAX in src/nn/tokenizer_tables.h
MAX_CP = 0x110000


def data_lines(path):
    """Yields the ';'-split fields of each data line, comments removed."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [field.strip() for field in line.split(";")]


def code_range(text):
    first, _, last = text.partition("..")
    return int(first, 16), int(last or first, 16)


def file_version(path):
    with open(path, encoding="utf-8") as f:
        match = re.search(r"-(\d+\.\d+\.\d+)\.txt", f.readline())
    return match.group(1) if match else "unknown"


def read_unicode_data(path):
    """category, bidi class and simple lowercase of every assigned code point."""
    category, bidi, lower = {}, {}, {}
    range_first = None
    for f in data_lines(path):
        cp = int(f[0], 16)
        if f[1].endswith(", First>"):
            range_first = cp
            continue
        first = range_first if f[1].endswith(", Last>") else cp
        range_first = None
        for c in range(first, cp + 1):
            category[c] = f[2]
            bidi[c] = f[4]
        if f[13]:
            lower[cp] = int(f[13], 16)
    return category, bidi, lower


def read_property(path, name):
    chars = set()
    for f in data_lines(path):
        if f[1] == name:
            first, last = code_range(f[0])
            chars.update(range(first, last + 1))
    return chars


def read_special_lower(path):
    """Unconditional SpecialCasing lowercase mappings, as CPython's makeunicodedata.py uses."""
    special = {}
    for f in data_lines(path):
        if len(f) > 4 and f[4]:
            continue  # language or context conditions: CPython ignores them (sigma aside)
        special[int(f[0], 16)] = [int(x, 16) for x in f[1].split()]
    return special


def read_case_classes(path):
    """Classes of code points equal under simple case folding (status C and S)."""
    fold = {}
    for f in data_lines(path):
        if f[1] in ("C", "S"):
            fold[int(f[0], 16)] = int(f[2], 16)
    classes = {}
    for cp, target in fold.items():
        classes.setdefault(target, {target}).add(cp)
    return {cp: members for members in classes.values() for cp in members}


def ranges_of(chars):
    out = []
    for cp in sorted(chars):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit_ranges(out, name, chars, what):
    rows = ranges_of(chars)
    out.append(f"/* {what} */")
    out.append(f"const nn_range {name}[] = {{")
    out.extend(f"    {{0x{a:04X}, 0x{b:04X}}}," for a, b in rows)
    out.append("};")
    out.append(f"const size_t {name}_count = {len(rows)};\n")


def main():
    udir = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    path = lambda name: os.path.join(udir, name)
    category, bidi, simple_lower = read_unicode_data(path("UnicodeData.txt"))
    white_space = read_property(path("PropList.txt"), "White_Space")
    cased = read_property(path("DerivedCoreProperties.txt"), "Cased")
    case_ignorable = read_property(path("DerivedCoreProperties.txt"), "Case_Ignorable")
    special_lower = read_special_lower(path("SpecialCasing.txt"))
    case_classes = read_case_classes(path("CaseFolding.txt"))

    def letter_or_number(cp):
        return category.get(cp, "Cn")[0] in "LN"

    # Classes of the split pattern [\p{L}]+ | [\p{N}] | [^\s\p{L}\p{N}]+ under IGNORECASE:
    # the `regex` module's negated class rejects a character any of whose case variants is a
    # letter or number (U+0345 folds to iota), so such a character matches no alternative.
    classes = {}
    for cp in range(MAX_CP):
        cat = category.get(cp, "Cn")
        if cat[0] == "L":
            classes[cp] = "NN_CHAR_LETTER"
        elif cat[0] == "N":
            classes[cp] = "NN_CHAR_NUMBER"
        elif cp in white_space:
            classes[cp] = "NN_CHAR_SPACE"
        elif any(letter_or_number(c) for c in case_classes.get(cp, ())):
            classes[cp] = "NN_CHAR_UNMATCHED"
    class_rows = []
    for cp in sorted(classes):
        if class_rows and class_rows[-1][1] == cp - 1 and class_rows[-1][2] == classes[cp]:
            class_rows[-1][1] = cp
        else:
            class_rows.append([cp, cp, classes[cp]])

    # str.isspace / str.strip: bidi class WS, B or S, or category Zs (makeunicodedata.py).
    py_space = {cp for cp in category if bidi[cp] in ("WS", "B", "S") or category[cp] == "Zs"}

    # str.lower: the unconditional special mapping, else the simple one.
    lower = {}
    for cp in sorted(set(simple_lower) | set(special_lower)):
        mapped = special_lower.get(cp, [simple_lower.get(cp, cp)])
        if mapped != [cp]:
            assert len(mapped) <= LOWER_MAX
            lower[cp] = mapped

    # Non-ASCII code points that IGNORECASE matches to an ASCII letter (U+017F to 's').
    ascii_folds = []
    for cp in sorted(case_classes):
        if cp >= 0x80:
            letters = [c for c in case_classes[cp] if 0x61 <= c <= 0x7A]
            if letters:
                ascii_folds.append((cp, chr(letters[0])))

    entities = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    assert all(k.isascii() and len(v) <= 2 for k, v in entities)
    invalid_refs = sorted(html._invalid_charrefs.items())
    assert all(len(v) == 1 for _, v in invalid_refs)

    version = file_version(path("DerivedCoreProperties.txt"))
    out = [
        "/* GENERATED by tools/gen_tokenizer_tables.py (`make unicode-tables`): do not edit.",
        f" * Unicode {version} ({udir}) and the html module of Python "
        f"{sys.version_info.major}.{sys.version_info.minor}. */",
        '#include "tokenizer_tables.h"\n',
    ]
    out.append("/* Split-pattern class of every code point not NN_CHAR_OTHER, by range. */")
    out.append("const nn_class_range nn_char_classes[] = {")
    out.extend(f"    {{0x{a:04X}, 0x{b:04X}, {c}}}," for a, b, c in class_rows)
    out.append("};")
    out.append(f"const size_t nn_char_classes_count = {len(class_rows)};\n")
    emit_ranges(out, "nn_python_space", py_space, "str.isspace()")
    emit_ranges(out, "nn_cased", cased, "Cased (DerivedCoreProperties)")
    emit_ranges(out, "nn_case_ignorable", case_ignorable, "Case_Ignorable (DerivedCoreProperties)")

    out.append("/* str.lower() of every code point it changes (U+03A3 aside: see nn_text_lower). */")
    out.append("const nn_lower_entry nn_lower_map[] = {")
    for cp, mapped in lower.items():
        cps = ", ".join(f"0x{c:04X}" for c in mapped)
        out.append(f"    {{0x{cp:04X}, {len(mapped)}, {{{cps}}}}},")
    out.append("};")
    out.append(f"const size_t nn_lower_map_count = {len(lower)};\n")

    out.append("/* Non-ASCII code points equal to an ASCII letter under simple case folding. */")
    out.append("const nn_ascii_fold nn_ascii_folds[] = {")
    out.extend(f"    {{0x{cp:04X}, '{letter}'}}," for cp, letter in ascii_folds)
    out.append("};")
    out.append(f"const size_t nn_ascii_folds_count = {len(ascii_folds)};\n")

    out.append("/* html.entities.html5, sorted by name (bytewise). */")
    out.append("const nn_html_entity nn_html_entities[] = {")
    for name, value in entities:
        cps = ", ".join(f"0x{ord(c):04X}" for c in value)
        out.append(f"    {{{c_string(name)}, {len(value)}, {{{cps}}}}},")
    out.append("};")
    out.append(f"const size_t nn_html_entities_count = {len(entities)};\n")

    out.append("/* html._invalid_charrefs: numeric references replaced by another character. */")
    out.append("const nn_html_charref nn_html_invalid_charrefs[] = {")
    out.extend(f"    {{0x{num:04X}, 0x{ord(v):04X}}}," for num, v in invalid_refs)
    out.append("};")
    out.append(f"const size_t nn_html_invalid_charrefs_count = {len(invalid_refs)};\n")
    emit_ranges(out, "nn_html_invalid_codepoints", html._invalid_codepoints,
                "html._invalid_codepoints: numeric references that become nothing")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
