//! Mask logic of [`super::Constraint`] on a toy byte vocabulary (no model needed): ids 0..=255
//! are single bytes, then a few multi-byte tokens, then a special end-of-sequence token.

use super::*;

const MULTI: &[&str] = &[
    "{\"", "name", "\":", " \"", "\"}", "true", "12", "<think>", "</think>",
];

fn vocab() -> VocabBytes {
    let mut bytes: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b]).collect();
    bytes.extend(MULTI.iter().map(|m| m.as_bytes().to_vec()));
    bytes.push(b"<|im_end|>".to_vec());
    let mut special = vec![false; bytes.len()];
    *special.last_mut().unwrap() = true;
    VocabBytes { bytes, special }
}

fn eos() -> u32 {
    vocab().len() as u32 - 1
}

fn multi(s: &str) -> u32 {
    256 + MULTI.iter().position(|m| *m == s).unwrap() as u32
}

fn constraint(spec: FormatSpec, gate: ThinkGate) -> Constraint {
    let v = vocab();
    let env = GrammarEnv::new(&v, v.len(), &[eos()]).unwrap();
    Constraint::new(&env, &spec, gate, v.len(), Rc::new(v)).unwrap()
}

fn schema(v: Value) -> Constraint {
    constraint(FormatSpec::Schema(v), ThinkGate::Off)
}

/// The ids the mask lets through now.
fn allowed(c: &mut Constraint) -> Vec<u32> {
    let mut row = vec![0.0f32; vocab().len()];
    c.mask(&mut row).unwrap();
    (0..row.len() as u32)
        .filter(|&i| row[i as usize].is_finite())
        .collect()
}

fn byte_ok(c: &mut Constraint, b: u8) -> bool {
    allowed(c).contains(&(b as u32))
}

/// Feed `text` one byte token at a time; Err(position) at the first byte the mask rejects.
fn feed(c: &mut Constraint, text: &str) -> Result<(), usize> {
    for (i, b) in text.bytes().enumerate() {
        if !byte_ok(c, b) {
            return Err(i);
        }
        c.accept(b as u32).unwrap();
    }
    Ok(())
}

#[test]
fn json_format_starts_with_an_object_and_ends_when_it_closes() {
    let mut c = constraint(FormatSpec::Json, ThinkGate::Off);
    let first = allowed(&mut c);
    assert!(first.contains(&(b'{' as u32)) && first.contains(&multi("{\"")));
    for bad in [b'[', b'"', b'a', b' ', b'1'] {
        assert!(
            !first.contains(&(bad as u32)),
            "{:?} may not start",
            bad as char
        );
    }
    assert!(!first.contains(&eos()), "EOS before any JSON");
    feed(
        &mut c,
        r#"{"a": [1, 2.5e3, true, null, {"b": "x\n\u00e9"}], "c": -0.5}"#,
    )
    .unwrap();
    assert!(
        c.is_complete(),
        "a closed top-level object completes the grammar"
    );
}

#[test]
fn json_format_rejects_invalid_prefixes() {
    for (text, at) in [
        (r#"{"a" 1}"#, 5),  // missing colon
        (r#"{"a":01}"#, 6), // leading zero
        (r#"{a:1}"#, 1),    // unquoted key
        (r#"{"a":1,}"#, 7), // trailing comma
        (r#"{"a":tru}"#, 8),
    ] {
        let mut c = constraint(FormatSpec::Json, ThinkGate::Off);
        assert_eq!(feed(&mut c, text), Err(at), "{text}");
    }
}

#[test]
fn multi_byte_tokens_are_allowed_only_when_all_their_bytes_fit() {
    let mut c = schema(
        json!({"type":"object","properties":{"name":{"type":"string"}},
        "required":["name"],"additionalProperties":false}),
    );
    assert!(allowed(&mut c).contains(&multi("{\"")));
    c.accept(multi("{\"")).unwrap();
    let now = allowed(&mut c);
    assert!(now.contains(&multi("name")));
    assert!(
        !now.contains(&(b'x' as u32)),
        "only the declared property may follow"
    );
    c.accept(multi("name")).unwrap();
    c.accept(multi("\":")).unwrap();
    assert!(allowed(&mut c).contains(&multi(" \"")));
    c.accept(multi(" \"")).unwrap();
    feed(&mut c, "Paris").unwrap();
    assert!(allowed(&mut c).contains(&multi("\"}")));
    c.accept(multi("\"}")).unwrap();
    assert!(c.is_complete());
}

#[test]
fn required_properties_must_appear_before_the_object_closes() {
    let mut c = schema(json!({"type":"object","properties":{
        "name":{"type":"string"},"capital":{"type":"string"},"population":{"type":"integer"}},
        "required":["name","capital","population"]}));
    feed(&mut c, "{").unwrap();
    assert!(
        !byte_ok(&mut c, b'}'),
        "an empty object misses required keys"
    );
    let mut c2 = schema(json!({"type":"object","properties":{
        "name":{"type":"string"},"capital":{"type":"string"},"population":{"type":"integer"}},
        "required":["name","capital","population"]}));
    feed(
        &mut c2,
        r#"{"name": "France", "capital": "Paris", "population": 68"#,
    )
    .unwrap();
    assert!(!byte_ok(&mut c2, b'.'), "an integer has no fraction");
    assert!(!byte_ok(&mut c2, b'"'));
    feed(&mut c2, "000000}").unwrap();
    assert!(c2.is_complete());
}

#[test]
fn property_types_are_enforced() {
    let s = json!({"type":"object","properties":{
        "ok":{"type":"boolean"},"none":{"type":"null"},"n":{"type":"number"},
        "tags":{"type":"array","items":{"type":"string"}},
        "inner":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}},
        "required":["ok","none","n","tags","inner"],"additionalProperties":false});
    let mut c = schema(s.clone());
    feed(&mut c, r#"{"ok": "#).unwrap();
    assert!(byte_ok(&mut c, b't') && byte_ok(&mut c, b'f') && !byte_ok(&mut c, b'"'));
    let mut c = schema(s.clone());
    assert_eq!(feed(&mut c, r#"{"ok": true, "none": 0"#), Err(21));
    let mut c = schema(s.clone());
    assert_eq!(
        feed(
            &mut c,
            r#"{"ok": true, "none": null, "n": -1.5, "tags": [1"#
        ),
        Err(47)
    );
    let mut c = schema(s);
    feed(
        &mut c,
        r#"{"ok": true, "none": null, "n": -1.5, "tags": ["a", "b"], "inner": {"x": 3}}"#,
    )
    .unwrap();
    assert!(c.is_complete());
}

#[test]
fn enum_const_and_any_of_limit_the_values() {
    let s = json!({"type":"object","properties":{
        "color":{"enum":["red","green"]},"v":{"const":2},
        "id":{"anyOf":[{"type":"integer"},{"type":"string"}]}},
        "required":["color","v","id"]});
    let mut c = schema(s.clone());
    feed(&mut c, r#"{"color": ""#).unwrap();
    assert!(byte_ok(&mut c, b'r') && byte_ok(&mut c, b'g') && !byte_ok(&mut c, b'b'));
    let mut c = schema(s.clone());
    assert!(feed(&mut c, r#"{"color": "red", "v": 3"#).is_err());
    let mut c = schema(s);
    feed(&mut c, r#"{"color": "green", "v": 2, "id": "#).unwrap();
    assert!(byte_ok(&mut c, b'7') && byte_ok(&mut c, b'"') && !byte_ok(&mut c, b't'));
}

#[test]
fn whitespace_runs_are_capped() {
    let mut c = constraint(FormatSpec::Json, ThinkGate::Off);
    feed(&mut c, "{").unwrap();
    feed(&mut c, &"\n".repeat(MAX_WHITESPACE)).unwrap();
    assert!(!byte_ok(&mut c, b'\n'), "no endless newlines");
    assert!(byte_ok(&mut c, b'}'));
}

#[test]
fn eos_is_allowed_only_once_the_value_is_complete_and_special_tokens_never() {
    let mut c = constraint(FormatSpec::Json, ThinkGate::Off);
    feed(&mut c, r#"{"a": 1"#).unwrap();
    assert!(!allowed(&mut c).contains(&eos()));
}

#[test]
fn thinking_is_unconstrained_until_the_block_closes() {
    let mut c = constraint(FormatSpec::Json, ThinkGate::Inside);
    assert!(!c.active());
    assert_eq!(
        allowed(&mut c).len(),
        vocab().len(),
        "no mask while thinking"
    );
    for b in "hmm, json.".bytes() {
        c.accept(b as u32).unwrap();
    }
    c.accept(multi("</think>")).unwrap();
    assert!(c.active());
    assert!(!byte_ok(&mut c, b'h') && byte_ok(&mut c, b'{'));

    // A thinking model whose prompt did not open the block may open it first...
    let mut c = constraint(FormatSpec::Json, ThinkGate::MayOpen(Some(multi("<think>"))));
    let first = allowed(&mut c);
    assert!(first.contains(&multi("<think>")) && first.contains(&(b'{' as u32)));
    c.accept(multi("<think>")).unwrap();
    assert!(!c.active());
    // ...or answer straight away, constrained.
    let mut c = constraint(FormatSpec::Json, ThinkGate::MayOpen(Some(multi("<think>"))));
    c.accept(b'{' as u32).unwrap();
    assert!(c.active());
    assert!(!byte_ok(&mut c, b'x'));
}

#[test]
fn an_invalid_schema_is_a_request_error() {
    let v = vocab();
    let env = GrammarEnv::new(&v, v.len(), &[eos()]).unwrap();
    let spec = FormatSpec::Schema(json!({"type": "no-such-type"}));
    let e = Constraint::new(&env, &spec, ThinkGate::Off, v.len(), Rc::new(v))
        .err()
        .unwrap();
    assert!(
        matches!(&e, EngineError::InvalidRequest(m) if m.starts_with("invalid JSON schema in format")),
        "{e:?}"
    );
}

/// Measurement, not a check (run with `--release -- --ignored --nocapture`): mask cost per step
/// over a 49,152-token synthetic vocabulary (SmolLM2's size) while writing a schema instance.
#[test]
#[ignore]
fn mask_cost_on_a_smollm2_sized_vocabulary() {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz \"{}:,0123456789_-.ABCDEFGHIJ\n";
    let mut bytes: Vec<Vec<u8>> = (0u8..=255).map(|b| vec![b]).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while bytes.len() < 49_151 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 2 + (x % 7) as usize;
        let w = (0..len)
            .map(|i| alphabet[((x >> (i * 6)) % alphabet.len() as u64) as usize])
            .collect();
        bytes.push(w);
    }
    bytes.push(b"<|im_end|>".to_vec());
    let mut special = vec![false; bytes.len()];
    *special.last_mut().unwrap() = true;
    let v = VocabBytes { bytes, special };
    let t0 = std::time::Instant::now();
    let env = GrammarEnv::new(&v, v.len(), &[v.len() as u32 - 1]).unwrap();
    let build = t0.elapsed();
    let spec = FormatSpec::Schema(json!({"type":"object","properties":{
        "name":{"type":"string"},"capital":{"type":"string"},"population":{"type":"integer"}},
        "required":["name","capital","population"]}));
    let mut c = Constraint::new(&env, &spec, ThinkGate::Off, v.len(), Rc::new(v)).unwrap();
    let text = r#"{"name": "France", "capital": "Paris", "population": 68000000}"#;
    let mut row = vec![0.0f32; 49_152];
    let t0 = std::time::Instant::now();
    for b in text.bytes() {
        row.iter_mut().for_each(|l| *l = 0.0);
        assert!(c.mask(&mut row).unwrap());
        c.accept(b as u32).unwrap();
    }
    let per = t0.elapsed() / text.len() as u32;
    eprintln!("grammar env build {build:?}; mask+accept per step {per:?}");
    assert!(c.is_complete());
}
