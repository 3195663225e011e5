//! The version has one source, Cargo.toml: the macros of the generated header, the
//! library's `memseg_version()` / `memseg_version_string()` and the package version must
//! agree, and `MEMSEG_VERSION_NUMBER` must pack the three parts as its comment says.
//!
//! Reads `include/memseg.h`, so these tests do not run under Miri (its isolation forbids
//! file access, and they hold no unsafe code worth interpreting).

use std::collections::HashMap;
use std::ffi::CStr;

use memseg::ffi::{memseg_status, memseg_version, memseg_version_string};

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/memseg.h");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every object-like `#define NAME body` of the header, with continued lines joined and
/// comments left out.
fn defines(header: &str) -> HashMap<String, String> {
    let joined = header.replace("\\\n", " ");
    let mut out = HashMap::new();
    for line in joined.lines() {
        let Some(rest) = line.trim_start().strip_prefix("#define ") else {
            continue;
        };
        let rest = rest.split("/*").next().unwrap();
        let (name, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        assert!(
            !name.contains('('),
            "function-like macro {name} is not expected"
        );
        let previous = out.insert(name.to_string(), body.trim().to_string());
        assert!(previous.is_none(), "{name} defined twice");
    }
    out
}

/// Evaluates a macro body of integer literals, other macros, `+`, `*` and parentheses,
/// with the macros in `macros` (after `overrides`) substituted, as the C preprocessor and
/// compiler would. Other operators are refused, so a change of formula is noticed.
fn evaluate(body: &str, macros: &HashMap<String, String>, overrides: &HashMap<&str, u64>) -> u64 {
    #[derive(Debug, Clone, PartialEq)]
    enum Token {
        Num(u64),
        Plus,
        Times,
        Open,
        Close,
    }
    fn tokenize(
        text: &str,
        macros: &HashMap<String, String>,
        overrides: &HashMap<&str, u64>,
        out: &mut Vec<Token>,
    ) {
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => {
                    chars.next();
                }
                '+' => {
                    chars.next();
                    out.push(Token::Plus);
                }
                '*' => {
                    chars.next();
                    out.push(Token::Times);
                }
                '(' => {
                    chars.next();
                    out.push(Token::Open);
                }
                ')' => {
                    chars.next();
                    out.push(Token::Close);
                }
                '0'..='9' => {
                    let mut digits = String::new();
                    while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(d);
                        chars.next();
                    }
                    assert!(
                        !chars.peek().is_some_and(|c| c.is_ascii_alphanumeric()),
                        "only plain decimal literals are expected in {text:?}"
                    );
                    out.push(Token::Num(digits.parse().unwrap()));
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let mut name = String::new();
                    while let Some(&d) = chars
                        .peek()
                        .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                    {
                        name.push(d);
                        chars.next();
                    }
                    if let Some(&value) = overrides.get(name.as_str()) {
                        out.push(Token::Num(value));
                    } else {
                        // Plain textual substitution, as the preprocessor does it.
                        let body = macros
                            .get(&name)
                            .unwrap_or_else(|| panic!("unknown macro {name}"));
                        tokenize(body, macros, overrides, out);
                    }
                }
                other => panic!("unexpected {other:?} in {text:?}"),
            }
        }
    }
    // sum := product ('+' product)*; product := atom ('*' atom)*; atom := num | '(' sum ')'
    fn sum(tokens: &[Token], at: &mut usize) -> u64 {
        let mut value = product(tokens, at);
        while tokens.get(*at) == Some(&Token::Plus) {
            *at += 1;
            value += product(tokens, at);
        }
        value
    }
    fn product(tokens: &[Token], at: &mut usize) -> u64 {
        let mut value = atom(tokens, at);
        while tokens.get(*at) == Some(&Token::Times) {
            *at += 1;
            value *= atom(tokens, at);
        }
        value
    }
    fn atom(tokens: &[Token], at: &mut usize) -> u64 {
        let token = tokens.get(*at).cloned();
        *at += 1;
        match token {
            Some(Token::Num(n)) => n,
            Some(Token::Open) => {
                let value = sum(tokens, at);
                assert_eq!(
                    tokens.get(*at),
                    Some(&Token::Close),
                    "unbalanced parentheses"
                );
                *at += 1;
                value
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut tokens = Vec::new();
    tokenize(body, macros, overrides, &mut tokens);
    let mut at = 0;
    let value = sum(&tokens, &mut at);
    assert_eq!(at, tokens.len(), "trailing tokens in {body:?}");
    value
}

fn number(macros: &HashMap<String, String>, name: &str) -> u64 {
    evaluate(&macros[name], macros, &HashMap::new())
}

#[test]
#[cfg_attr(miri, ignore = "reads the header file")]
fn header_macros_match_cargo_and_the_library() {
    let macros = defines(&header());
    let major = number(&macros, "MEMSEG_VERSION_MAJOR");
    let minor = number(&macros, "MEMSEG_VERSION_MINOR");
    let patch = number(&macros, "MEMSEG_VERSION_PATCH");
    assert_eq!(major.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(minor.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(patch.to_string(), env!("CARGO_PKG_VERSION_PATCH"));

    let string = &macros["MEMSEG_VERSION_STRING"];
    assert_eq!(string, &format!("\"{}\"", env!("CARGO_PKG_VERSION")));
    // SAFETY: memseg_version_string returns a static NUL-terminated string.
    let runtime = unsafe { CStr::from_ptr(memseg_version_string()) };
    assert_eq!(runtime.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(runtime.to_str().unwrap(), string.trim_matches('"'));
    assert_eq!(
        format!("{major}.{minor}.{patch}"),
        env!("CARGO_PKG_VERSION"),
        "no pre-release or build suffix the macros could not express"
    );

    let packed = number(&macros, "MEMSEG_VERSION_NUMBER");
    assert_eq!(
        packed,
        u64::from(memseg_version()),
        "header and library agree"
    );
    assert_eq!(packed, major * 1_000_000 + minor * 1_000 + patch);
}

/// The packing formula is checked on other versions too: a slip such as a wrong factor on
/// a part that is 0 today would not show on the current version alone.
#[test]
#[cfg_attr(miri, ignore = "reads the header file")]
fn the_version_number_formula_packs_every_part() {
    let macros = defines(&header());
    let formula = &macros["MEMSEG_VERSION_NUMBER"];
    for (major, minor, patch) in [
        (0, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 2, 3),
        (12, 345, 678),
        (999, 999, 999),
    ] {
        let overrides = HashMap::from([
            ("MEMSEG_VERSION_MAJOR", major),
            ("MEMSEG_VERSION_MINOR", minor),
            ("MEMSEG_VERSION_PATCH", patch),
        ]);
        assert_eq!(
            evaluate(formula, &macros, &overrides),
            major * 1_000_000 + minor * 1_000 + patch,
            "{major}.{minor}.{patch} with {formula}"
        );
    }
}

/// The status codes in the header are the numbers the library returns.
#[test]
#[cfg_attr(miri, ignore = "reads the header file")]
fn header_status_codes_match_the_library() {
    let header = header();
    for status in memseg::ffi::status::ALL_STATUSES {
        let name = status.name().to_str().unwrap();
        let line = format!("{name} = {},", status as i32);
        assert!(header.contains(&line), "the header lacks `{line}`");
    }
    let count = header.matches("  MEMSEG_STATUS_").count();
    assert_eq!(
        count,
        memseg::ffi::status::ALL_STATUSES.len(),
        "a status the library lacks"
    );
    assert_eq!(memseg_status::Ok as i32, 0);
}

#[test]
fn the_evaluator_respects_precedence_and_parentheses() {
    let macros = HashMap::from([
        ("A".to_string(), "2".to_string()),
        ("B".to_string(), "(A + 3) * 4".to_string()),
        ("C".to_string(), "1 + 1".to_string()),
    ]);
    assert_eq!(
        evaluate("C * 3", &macros, &HashMap::new()),
        4,
        "no parentheses added"
    );
    assert_eq!(evaluate("1 + 2 * 3", &macros, &HashMap::new()), 7);
    assert_eq!(evaluate("(1 + 2) * 3", &macros, &HashMap::new()), 9);
    assert_eq!(evaluate("B + A", &macros, &HashMap::new()), 22);
    assert_eq!(evaluate("A * A", &macros, &HashMap::from([("A", 5)])), 25);
}
