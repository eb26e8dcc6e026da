//! The declarations of src/lib.rs match include/diffclip.h: every DC_API function (name,
//! arity, argument and result types), struct field, opaque handle, callback type, enum value
//! and macro. A function the header adds or removes fails here until lib.rs follows.
//!
//! The header is read with a small parser for its regular style (one declaration per
//! statement, `typedef struct x {...} x;`, `DC_API type name(params);`).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

#[derive(Debug, Clone)]
struct CType {
    base: String,
    is_const: bool,
    /// For each `*`, innermost first: whether that pointer itself is const.
    pointers: Vec<bool>,
    array: Option<String>,
}

type Params = Vec<(String, CType)>;

#[derive(Default)]
struct Header {
    macros: BTreeMap<String, String>,
    enums: BTreeMap<String, Vec<(String, i64)>>,
    structs: BTreeMap<String, Params>,
    opaque: Vec<String>,
    callbacks: BTreeMap<String, (CType, Params)>,
    functions: BTreeMap<String, (CType, Params)>,
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &PathBuf) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {}", path.display(), e))
}

fn strip_c_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
            out.push(' ');
        } else if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |end| &rest[end..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Identifiers, numbers, string literals and single punctuation characters.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric()
            || c == '_'
            || (c == '-' && chars.get(i + 1).map_or(false, |d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
            out.push(chars[start..i.min(chars.len())].iter().collect());
        } else if c == '-' && chars.get(i + 1) == Some(&'>') {
            out.push("->".to_string());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

fn normalize(text: &str) -> String {
    tokens(text).join(" ")
}

/// `const char` and `*const *texts` of `const char *const *texts`.
fn split_spec(decl: &str) -> (Vec<String>, Vec<String>) {
    let t = tokens(decl);
    let mut n = 0;
    if t.get(n).map(String::as_str) == Some("const") {
        n += 1;
    }
    n += 1; // the type name
    if t.get(n).map(String::as_str) == Some("const") {
        n += 1;
    }
    (t[..n.min(t.len())].to_vec(), t[n.min(t.len())..].to_vec())
}

fn ctype(spec: &[String], declarator: &[String]) -> (String, CType) {
    let is_const = spec.iter().any(|w| w == "const");
    let base = spec
        .iter()
        .filter(|w| *w != "const")
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let (mut pointers, mut name, mut array) = (Vec::new(), String::new(), None);
    let mut i = 0;
    while i < declarator.len() {
        match declarator[i].as_str() {
            "*" => pointers.push(false),
            "const" => *pointers.last_mut().expect("const before any *") = true,
            "[" => {
                array = Some(declarator.get(i + 1).cloned().unwrap_or_default());
                break;
            }
            word => name = word.to_string(),
        }
        i += 1;
    }
    (
        name,
        CType {
            base,
            is_const,
            pointers,
            array,
        },
    )
}

fn declaration(text: &str) -> (String, CType) {
    let (spec, declarator) = split_spec(text);
    ctype(&spec, &declarator)
}

fn params(text: &str) -> Params {
    if text.trim() == "void" || text.trim().is_empty() {
        return Vec::new();
    }
    text.split(',').map(declaration).collect()
}

fn between(text: &str, open: char, close: char) -> &str {
    let start = text.find(open).expect("opening bracket") + open.len_utf8();
    let end = text.rfind(close).expect("closing bracket");
    &text[start..end]
}

fn parse_header(path: &PathBuf) -> Header {
    // A macro continued over several lines is one line.
    let text = strip_c_comments(&read(path)).replace("\\\n", " ");
    let mut header = Header::default();
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(define) = trimmed.strip_prefix("#define") {
            let mut words = define.split_whitespace();
            if let (Some(name), Some(value)) = (words.next(), words.next()) {
                let literal = value.parse::<f64>().is_ok() || value.starts_with('"');
                if name.starts_with("DC_") && literal {
                    header.macros.insert(name.to_string(), value.to_string());
                }
            }
        } else if !trimmed.starts_with('#') && trimmed != "}" {
            code.push_str(&line.replace("extern \"C\" {", " "));
            code.push('\n');
        }
    }
    let mut statements = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in code.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                statements.push(normalize(&current));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    for statement in statements.iter().filter(|s| !s.is_empty()) {
        let words: Vec<&str> = statement.split(' ').collect();
        if statement.starts_with("typedef enum") {
            let mut values = Vec::new();
            let mut next = 0;
            for item in between(statement, '{', '}')
                .split(',')
                .filter(|i| !i.trim().is_empty())
            {
                let mut parts = item.split('=');
                let key = parts.next().unwrap().trim().to_string();
                if let Some(value) = parts.next() {
                    next = value.replace(' ', "").parse().expect("enum value");
                }
                values.push((key, next));
                next += 1;
            }
            header.enums.insert(words[2].to_string(), values);
        } else if statement.starts_with("typedef struct") && statement.contains('{') {
            let mut fields = Vec::new();
            for member in between(statement, '{', '}')
                .split(';')
                .filter(|m| !m.trim().is_empty())
            {
                let mut parts = member.split(',');
                let (spec, first) = split_spec(parts.next().unwrap());
                fields.push(ctype(&spec, &first));
                for more in parts {
                    fields.push(ctype(&spec, &tokens(more)));
                }
            }
            header.structs.insert(words[2].to_string(), fields);
        } else if statement.starts_with("typedef struct") {
            header.opaque.push(words[2].to_string());
        } else if statement.starts_with("typedef") && statement.contains("( *") {
            let open = statement.find("( *").unwrap();
            let result = declaration(&statement["typedef".len()..open]).1;
            let name = tokens(&statement[open..])[2].clone();
            let rest = &statement[open + 1..];
            let list = between(&rest[rest.find(')').unwrap() + 1..], '(', ')');
            header.callbacks.insert(name, (result, params(list)));
        } else if let Some(rest) = statement.strip_prefix("DC_API ") {
            let open = rest.find('(').unwrap();
            let before: Vec<String> = tokens(&rest[..open]);
            let name = before.last().unwrap().clone();
            let result = declaration(&before[..before.len() - 1].join(" ")).1;
            header
                .functions
                .insert(name, (result, params(between(rest, '(', ')'))));
        }
    }
    assert!(
        !header.functions.is_empty(),
        "no DC_API prototypes in {}",
        path.display()
    );
    header
}

/// The Rust type lib.rs must use for a C type, normalized.
fn rust_type(t: &CType, header: &Header, parameter: bool) -> String {
    let mut pointers = t.pointers.clone();
    let mut array = t.array.clone();
    if parameter && array.is_some() {
        pointers.push(false); // an array parameter is a pointer
        array = None;
    }
    let mut ty = match t.base.as_str() {
        "int" => "c_int",
        "unsigned" => "c_uint",
        "size_t" => "usize",
        "int64_t" => "i64",
        "uint64_t" => "u64",
        "uint8_t" => "u8",
        "double" => "f64",
        "float" => "f32",
        "char" => "c_char",
        "void" if pointers.is_empty() => "",
        "void" => "c_void",
        other => {
            let known = header.enums.contains_key(other)
                || header.structs.contains_key(other)
                || header.opaque.iter().any(|o| o == other)
                || header.callbacks.contains_key(other);
            assert!(known, "unknown C type {other}");
            other
        }
    }
    .to_string();
    for level in 0..pointers.len() {
        let pointee_const = if level == 0 {
            t.is_const
        } else {
            pointers[level - 1]
        };
        ty = format!("*{} {}", if pointee_const { "const" } else { "mut" }, ty);
    }
    if let Some(n) = array {
        ty = format!("[{ty}; {n}]");
    }
    normalize(&ty)
}

/// lib.rs: consts, type aliases, structs (with `pub` fields; opaque ones from `opaque!`) and
/// the extern block's functions.
struct RustSide {
    consts: BTreeMap<String, (String, String)>,
    types: BTreeMap<String, String>,
    structs: BTreeMap<String, Vec<(String, String)>>,
    opaque: Vec<String>,
    functions: BTreeMap<String, (String, Vec<(String, String)>)>,
}

fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in text.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn name_and_type(item: &str) -> (String, String) {
    let (name, ty) = item
        .split_once(':')
        .unwrap_or_else(|| panic!("no type in {item:?}"));
    (
        name.trim().trim_start_matches("pub ").to_string(),
        normalize(ty),
    )
}

fn parse_rust(path: &PathBuf) -> RustSide {
    let source: String = read(path)
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("->", "→"); // keeps '>' of arrows out of the bracket depth count
    let mut side = RustSide {
        consts: BTreeMap::new(),
        types: BTreeMap::new(),
        structs: BTreeMap::new(),
        opaque: Vec::new(),
        functions: BTreeMap::new(),
    };
    let statements: Vec<&str> = source.split(';').collect();
    for statement in &statements {
        let s = statement.trim();
        if let Some(rest) = s
            .rsplit("pub const ")
            .next()
            .filter(|_| s.contains("pub const "))
        {
            let (name_type, value) = rest.split_once('=').expect("const value");
            let (name, ty) = name_and_type(name_type);
            side.consts.insert(name, (ty, value.trim().to_string()));
        } else if let Some(rest) = s
            .rsplit("pub type ")
            .next()
            .filter(|_| s.contains("pub type "))
        {
            let (name, ty) = rest.split_once('=').expect("type alias");
            side.types
                .insert(name.trim().to_string(), normalize(&ty.replace('→', "->")));
        }
    }
    let mut rest = source.as_str();
    while let Some(at) = rest.find("pub struct ") {
        rest = &rest[at + "pub struct ".len()..];
        let name = rest[..rest.find('{').unwrap()].trim().to_string();
        let body = &rest[rest.find('{').unwrap() + 1..rest.find('}').unwrap()];
        if !name.starts_with('$') {
            side.structs.insert(
                name,
                split_top_level(body)
                    .iter()
                    .map(|f| name_and_type(f))
                    .collect(),
            );
        }
    }
    let opaque = source
        .split("opaque!(")
        .nth(1)
        .expect("an opaque!(...) invocation");
    side.opaque = opaque[..opaque.find(')').unwrap()]
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let block = source
        .split("extern \"C\" {")
        .nth(1)
        .expect("an extern \"C\" block");
    for item in block[..block.find('}').unwrap()].split(';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let signature = item
            .strip_prefix("pub fn ")
            .unwrap_or_else(|| panic!("item {item:?}"));
        let open = signature.find('(').unwrap();
        let close = signature.rfind(')').unwrap();
        let result = signature[close + 1..].trim().trim_start_matches('→');
        let params = split_top_level(&signature[open + 1..close])
            .iter()
            .map(|p| name_and_type(p))
            .collect();
        side.functions.insert(
            signature[..open].trim().to_string(),
            (normalize(result), params),
        );
    }
    side
}

struct Check {
    header: Header,
    rust: RustSide,
    problems: Vec<String>,
}

impl Check {
    fn new() -> Check {
        Check {
            header: parse_header(&repo_file("../../../include/diffclip.h")),
            rust: parse_rust(&repo_file("src/lib.rs")),
            problems: Vec::new(),
        }
    }

    fn expect(&mut self, ok: bool, problem: String) {
        if !ok {
            self.problems.push(problem);
        }
    }

    fn params(&mut self, what: &str, c: &Params, rust: &[(String, String)]) {
        if c.len() != rust.len() {
            self.problems.push(format!(
                "{what}: {} arguments, the header has {}",
                rust.len(),
                c.len()
            ));
            return;
        }
        for ((name, t), (_, ours)) in c.iter().zip(rust) {
            let want = rust_type(t, &self.header, true);
            self.expect(
                *ours == want,
                format!("{what}: argument {name} is `{ours}`, want `{want}`"),
            );
        }
    }

    fn finish(self) {
        assert!(
            self.problems.is_empty(),
            "lib.rs differs from diffclip.h:\n{}",
            self.problems.join("\n")
        );
    }
}

#[test]
fn functions_match_the_header() {
    let mut check = Check::new();
    let declared: Vec<String> = check.header.functions.keys().cloned().collect();
    for name in &declared {
        let (result, params) = check.header.functions[name].clone();
        let ours = match check.rust.functions.get(name) {
            Some(ours) => ours.clone(),
            None => {
                check
                    .problems
                    .push(format!("{name}: declared in the header, missing in lib.rs"));
                continue;
            }
        };
        let want = rust_type(&result, &check.header, false);
        check.expect(
            ours.0 == want,
            format!("{name}: returns `{}`, want `{want}`", ours.0),
        );
        check.params(name, &params, &ours.1);
    }
    for name in check.rust.functions.keys() {
        if !check.header.functions.contains_key(name) {
            check
                .problems
                .push(format!("{name}: in lib.rs, not in the header"));
        }
    }
    check.finish();
}

#[test]
fn structs_and_handles_match_the_header() {
    let mut check = Check::new();
    let names: Vec<String> = check.header.structs.keys().cloned().collect();
    for name in &names {
        let fields = check.header.structs[name].clone();
        let ours = check.rust.structs.get(name).cloned().unwrap_or_default();
        let want: Vec<(String, String)> = fields
            .iter()
            .map(|(f, t)| (f.clone(), rust_type(t, &check.header, false)))
            .collect();
        check.expect(
            ours == want,
            format!("struct {name}: `{ours:?}`, want `{want:?}`"),
        );
    }
    let ours: Vec<&String> = check
        .rust
        .structs
        .keys()
        .filter(|n| !check.rust.opaque.contains(n))
        .collect();
    check.expect(
        ours == names.iter().collect::<Vec<_>>(),
        format!("structs {ours:?}, want {names:?}"),
    );
    let (mut a, mut b) = (check.header.opaque.clone(), check.rust.opaque.clone());
    a.sort();
    b.sort();
    check.expect(a == b, format!("opaque handles {b:?}, want {a:?}"));
    check.finish();
}

#[test]
fn callbacks_match_the_header() {
    let mut check = Check::new();
    for (name, (result, params)) in check.header.callbacks.clone() {
        let args: Vec<String> = params
            .iter()
            .map(|(n, t)| format!("{n}: {}", rust_type(t, &check.header, true)))
            .collect();
        let want = normalize(&format!(
            "Option<unsafe extern \"C\" fn({}) -> {}>",
            args.join(", "),
            rust_type(&result, &check.header, false)
        ));
        let ours = check.rust.types.get(&name).cloned().unwrap_or_default();
        check.expect(
            ours == want,
            format!("type {name} = `{ours}`, want `{want}`"),
        );
    }
    check.finish();
}

#[test]
fn enums_and_macros_match_the_header() {
    let mut check = Check::new();
    for (name, values) in check.header.enums.clone() {
        let alias = check.rust.types.get(&name).cloned().unwrap_or_default();
        check.expect(
            alias == "c_int",
            format!("type {name} = `{alias}`, want c_int"),
        );
        for (key, value) in values {
            let ours = check.rust.consts.get(&key).cloned().unwrap_or_default();
            check.expect(
                ours == (name.clone(), value.to_string()),
                format!("const {key}: `{ours:?}`, want {name} = {value}"),
            );
        }
    }
    for (name, value) in check.header.macros.clone() {
        let ours = check
            .rust
            .consts
            .get(&name)
            .map(|c| c.1.clone())
            .unwrap_or_default();
        check.expect(
            ours == value,
            format!("const {name} = `{ours}`, want {value}"),
        );
    }
    check.finish();
}
