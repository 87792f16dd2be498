//! The prefs.js parser and editor on realistic Thunderbird 115 files: lossless round trips,
//! one-line edits, appends, escapes and syntax errors.

mod common;

use common::{changed_lines, fixture, lines};
use mailmend_thunderbird::prefs::{
    encode_string, LineEnding, PrefKind, PrefValue, PrefsFile, SetError,
};

const VARIANTS: [(&str, &str); 3] = [
    ("prefs-tb115.js", "\n"),
    ("prefs-tb115-crlf.js", "\r\n"),
    ("prefs-tb115-bom.js", "\n"),
];

fn s(v: &str) -> PrefValue {
    PrefValue::String(v.into())
}

#[test]
fn unchanged_files_reserialise_byte_identical() {
    for name in [
        "prefs-tb115.js",
        "prefs-tb115-crlf.js",
        "prefs-tb115-bom.js",
        "user.js",
    ] {
        let bytes = fixture(name);
        let f = PrefsFile::parse(&bytes).unwrap();
        assert_eq!(f.as_bytes(), &bytes[..], "{name}");
        assert_eq!(f.clone().into_bytes(), bytes, "{name}");
        let statements = lines(&bytes)
            .iter()
            .filter(|l| l.starts_with(b"user_pref") || l.starts_with(b"\xEF\xBB\xBFuser_pref"))
            .count();
        assert_eq!(f.prefs().len(), statements, "{name}");
    }
}

#[test]
fn the_three_variants_read_the_same_prefs() {
    let parsed: Vec<PrefsFile> = VARIANTS
        .iter()
        .map(|(n, _)| PrefsFile::parse(&fixture(n)).unwrap())
        .collect();
    let names_values = |f: &PrefsFile| -> Vec<(String, PrefValue, usize)> {
        f.prefs()
            .iter()
            .map(|p| (p.name.clone(), p.value.clone(), p.line))
            .collect()
    };
    assert_eq!(names_values(&parsed[0]), names_values(&parsed[1]));
    assert_eq!(names_values(&parsed[0]), names_values(&parsed[2]));
    assert!(parsed[2].has_bom() && !parsed[0].has_bom());
    assert_eq!(parsed[1].line_ending(), LineEnding::CrLf);
    assert_eq!(parsed[0].line_ending(), LineEnding::Lf);
}

#[test]
fn escapes_decode_as_thunderbird_reads_them() {
    let f = PrefsFile::parse(&fixture("prefs-tb115.js")).unwrap();
    assert_eq!(
        f.get("mail.identity.id1.fullName"),
        Some(&s("René \"Ren\" Dupont"))
    );
    assert_eq!(
        f.get("mail.identity.id1.htmlSigText"),
        Some(&s("-- \nRené Dupont\n\\\\fileserver\\share"))
    );
    assert_eq!(
        f.get("mail.identity.id2.fullName"),
        Some(&s("Rene at home"))
    );
    assert_eq!(
        f.get("mail.server.server1.namespace.personal"),
        Some(&s("\"\""))
    );
    assert_eq!(
        f.get("network.cookie.cookieBehavior"),
        Some(&PrefValue::Int(-1))
    );
    assert_eq!(
        f.get("toolkit.telemetry.cachedClientID"),
        Some(&s("c0ffee00-1234-4abc-8def-0123456789ab"))
    );
    assert_eq!(
        f.get("mail.identity.id1.valid"),
        Some(&PrefValue::Bool(true))
    );
    assert_eq!(f.find("mail.server.server1.port").unwrap().line, 64);
}

#[test]
fn changing_one_value_touches_exactly_one_line() {
    for (name, eol) in VARIANTS {
        let before = fixture(name);
        let mut f = PrefsFile::parse(&before).unwrap();
        assert!(f
            .set("mail.server.server1.port", &PrefValue::Int(995))
            .unwrap());
        assert!(f
            .set("mail.identity.id1.fullName", &s("Renée \"R\" Dupont\\"))
            .unwrap());
        let after = f.as_bytes();
        let changed = changed_lines(&before, after);
        assert_eq!(changed.len(), 2, "{name}: {changed:?}");
        let after_lines = lines(after);
        assert_eq!(
            after_lines[changed[0]],
            format!(r#"user_pref("mail.identity.id1.fullName", "Renée \"R\" Dupont\\");{eol}"#)
                .as_bytes()
        );
        assert_eq!(
            after_lines[changed[1]],
            format!("user_pref(\"mail.server.server1.port\", 995);{eol}").as_bytes()
        );
        let reread = PrefsFile::parse(after).unwrap();
        assert_eq!(
            reread.get("mail.server.server1.port"),
            Some(&PrefValue::Int(995))
        );
        assert_eq!(
            reread.get("mail.identity.id1.fullName"),
            Some(&s("Renée \"R\" Dupont\\"))
        );
        assert_eq!(reread.has_bom(), name.contains("bom"));
    }
}

#[test]
fn adding_an_absent_key_appends_exactly_one_line_in_the_files_line_ending() {
    for (name, eol) in VARIANTS {
        let before = fixture(name);
        let mut f = PrefsFile::parse(&before).unwrap();
        assert!(!f.contains("mail.server.server3.port"));
        assert!(f
            .set("mail.server.server3.port", &PrefValue::Int(995))
            .unwrap());
        let after = f.as_bytes();
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "{name}: prefix changed"
        );
        assert_eq!(
            &after[before.len()..],
            format!("user_pref(\"mail.server.server3.port\", 995);{eol}").as_bytes()
        );
        assert_eq!(lines(after).len(), lines(&before).len() + 1);
    }
}

#[test]
fn appending_after_an_unterminated_comment_ends_that_line_first() {
    let mut f = PrefsFile::parse(b"user_pref(\"a\", 1);\r\n// trailing comment").unwrap();
    f.set("b", &PrefValue::Bool(false)).unwrap();
    assert_eq!(
        f.as_bytes(),
        b"user_pref(\"a\", 1);\r\n// trailing comment\r\nuser_pref(\"b\", false);\r\n"
    );
    assert_eq!(f.get("b"), Some(&PrefValue::Bool(false)));
}

#[test]
fn appending_to_an_empty_or_bom_only_file_adds_no_blank_line() {
    let mut f = PrefsFile::parse(b"").unwrap();
    f.set("a", &s("x")).unwrap();
    assert_eq!(f.as_bytes(), b"user_pref(\"a\", \"x\");\n");
    let mut f = PrefsFile::parse(b"\xEF\xBB\xBF").unwrap();
    f.set("a", &PrefValue::Int(-7)).unwrap();
    assert_eq!(f.as_bytes(), b"\xEF\xBB\xBFuser_pref(\"a\", -7);\n");
}

#[test]
fn setting_the_current_value_keeps_its_original_spelling() {
    let before = fixture("prefs-tb115.js");
    let mut f = PrefsFile::parse(&before).unwrap();
    assert!(!f
        .set("mail.identity.id1.fullName", &s("René \"Ren\" Dupont"))
        .unwrap());
    assert!(!f
        .set("mail.identity.id2.fullName", &s("Rene at home"))
        .unwrap());
    assert!(!f
        .set("mail.server.server1.port", &PrefValue::Int(993))
        .unwrap());
    assert_eq!(f.as_bytes(), &before[..]);
}

#[test]
fn an_integer_with_a_spaced_sign_is_replaced_whole() {
    let mut f = PrefsFile::parse(b"user_pref(\"a\", - /* odd */ 5); // keep\n").unwrap();
    assert_eq!(f.get("a"), Some(&PrefValue::Int(-5)));
    f.set("a", &PrefValue::Int(12)).unwrap();
    assert_eq!(f.as_bytes(), b"user_pref(\"a\", 12); // keep\n");
}

#[test]
fn written_strings_round_trip_through_the_parser() {
    let samples = [
        "",
        "plain",
        "quote \" and apostrophe '",
        "back\\slash\\\\",
        "line\nbreak\r\nand\rcr",
        "tab\there, bell\x07, del\x7f, esc\x1b",
        "é ü 中文 😀",
        "\\u00e9 is not an escape here",
        "/* not a comment */ // nor this # nor this",
    ];
    for text in samples {
        let mut f = PrefsFile::parse(b"user_pref(\"k\", \"old\");\n").unwrap();
        f.set("k", &s(text)).unwrap();
        f.set("new.key", &s(text)).unwrap();
        let reread = PrefsFile::parse(f.as_bytes()).unwrap();
        assert_eq!(reread.get("k"), Some(&s(text)), "{text:?}");
        assert_eq!(reread.get("new.key"), Some(&s(text)), "{text:?}");
        assert_eq!(lines(f.as_bytes()).len(), 2, "{text:?} spilled over lines");
    }
    let mut f = PrefsFile::parse(b"").unwrap();
    for name in ["we\"ird", "naïve.key", "with space"] {
        f.set(name, &PrefValue::Int(1)).unwrap();
        assert_eq!(
            PrefsFile::parse(f.as_bytes()).unwrap().get(name),
            Some(&PrefValue::Int(1))
        );
    }
}

#[test]
fn a_string_with_nul_cannot_be_written() {
    let mut f = PrefsFile::parse(b"user_pref(\"k\", \"old\");\n").unwrap();
    let err = f.set("k", &s("a\0b")).unwrap_err();
    assert!(matches!(err, SetError::InvalidValue { .. }), "{err}");
    assert_eq!(f.as_bytes(), b"user_pref(\"k\", \"old\");\n");
    assert!(encode_string("\0").is_err());
}

#[test]
fn password_prefs_are_withheld_and_never_written() {
    let canary = "CANARY-hunter2-7f3a";
    let text = format!(
        "user_pref(\"mail.server.server1.password\", \"{canary}\");\n\
         user_pref(\"signon.PASSWORD.x\", '{canary}');\n"
    );
    let mut f = PrefsFile::parse(text.as_bytes()).unwrap();
    assert_eq!(
        f.get("mail.server.server1.password"),
        Some(&PrefValue::Withheld)
    );
    assert_eq!(f.get("signon.PASSWORD.x"), Some(&PrefValue::Withheld));
    for rendered in [format!("{f:?}"), format!("{:?}", f.prefs())] {
        assert!(!rendered.contains(canary), "{rendered}");
    }
    let err = f
        .set("mail.server.server1.password", &s("new"))
        .unwrap_err();
    assert!(matches!(err, SetError::Secret { .. }));
    let err = f
        .set("mail.smtpserver.smtp1.Password", &s("new"))
        .unwrap_err();
    assert!(matches!(err, SetError::Secret { .. }));
    assert_eq!(f.as_bytes(), text.as_bytes());
}

#[test]
fn default_statements_parse_and_rank_below_user_prefs() {
    let f = PrefsFile::parse(
        b"pref('a', 1);\nsticky_pref(\"b\", true);\nlock_pref(\"c\", 'x');\nuser_pref(\"a\", 2);\n",
    )
    .unwrap();
    assert_eq!(f.get("a"), Some(&PrefValue::Int(2)));
    assert_eq!(f.find("a").unwrap().kind, PrefKind::User);
    assert_eq!(f.find("b").unwrap().kind, PrefKind::Sticky);
    assert_eq!(f.find("c").unwrap().kind, PrefKind::Locked);
}

#[test]
fn the_malformed_fixture_reports_line_and_column() {
    let e = PrefsFile::parse(&fixture("prefs-broken.js")).unwrap_err();
    assert_eq!((e.line, e.column), (5, 42));
    assert!(
        e.message.contains("expected ',' after pref name"),
        "{}",
        e.message
    );
}

#[test]
fn syntax_errors_point_at_the_offending_token() {
    let cases: &[(&[u8], usize, usize, &str)] = &[
        (b"user_pref(\"a\", 1)", 1, 18, "expected ';'"),
        (
            b"user_pref(\"a\", 1);\nuser_pref(\"b\", 2",
            2,
            17,
            "expected ')'",
        ),
        (b"user_pref(\"a\", );", 1, 16, "expected pref value"),
        (b"user_pref(1, 2);", 1, 11, "expected pref name"),
        (b"user_pref \"a\", 1);", 1, 11, "expected '('"),
        (b"\n\n  foo(\"a\", 1);", 3, 3, "unknown keyword"),
        (b"user_pref(\"a\", \"abc);\n", 1, 16, "unterminated string"),
        (
            b"/* never closed\nuser_pref(\"a\", 1);",
            1,
            1,
            "unterminated /* comment",
        ),
        (b"user_pref(\"a\", \"\\q\");", 1, 17, "unexpected escape"),
        (b"user_pref(\"a\", \"\\x4\");", 1, 17, "malformed \\x"),
        (b"user_pref(\"a\", \"\\u12\");", 1, 17, "malformed \\u"),
        (b"user_pref(\"a\", 1); / x", 1, 21, "expected '/' or '*'"),
        (b"user_pref(\"a\", @);", 1, 16, "unexpected character"),
        (b"user_pref(\"a\", - x);", 1, 18, "unknown keyword"),
        (
            b"user_pref(\"a\", -true);",
            1,
            17,
            "expected integer literal after '-'",
        ),
        (b"user_pref(\"a\", 1);;", 1, 19, "expected 'user_pref'"),
        (
            b"user_pref(\"a\", 1)\r\n;\r\nuser_pref(\"b\" 2);",
            3,
            15,
            "expected ','",
        ),
    ];
    for (input, line, column, message) in cases {
        let e = PrefsFile::parse(input).unwrap_err();
        assert_eq!(
            (e.line, e.column),
            (*line, *column),
            "{:?}: {e}",
            String::from_utf8_lossy(input)
        );
        assert!(
            e.message.contains(message),
            "{:?}: {e}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_statement_split_over_lines_and_comments_still_parses() {
    let text = b"# header\nuser_pref( // name next\n  \"a\" /* c */ ,\r\n\t+42\x0b\x0c) ;\r";
    let f = PrefsFile::parse(text).unwrap();
    assert_eq!(f.get("a"), Some(&PrefValue::Int(42)));
    assert_eq!(f.find("a").unwrap().line, 2);
    let mut g = f.clone();
    g.set("a", &PrefValue::Int(7)).unwrap();
    assert_eq!(
        g.as_bytes(),
        b"# header\nuser_pref( // name next\n  \"a\" /* c */ ,\r\n\t7\x0b\x0c) ;\r"
    );
}
