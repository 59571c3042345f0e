//! `show` output pinned against upstream's `TestShowInfo` expectations.

use super::*;
use serde_json::json;

fn resp(extra: Value) -> ShowResponse {
    let mut base = json!({
        "details": {"family": "test", "parameter_size": "7B", "quantization_level": "FP16"},
        "modified_at": "2024-01-01T00:00:00Z"
    });
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn bare_details() {
    let expect = "  Model\n    architecture    test    \n    parameters      7B      \n    quantization    FP16    \n\n";
    assert_eq!(show_info(&resp(json!({})), false), expect);
}

#[test]
fn bare_model_info() {
    let r = resp(json!({"model_info": {
        "general.architecture": "test",
        "general.parameter_count": 7_000_000_000u64,
        "test.context_length": 0,
        "test.embedding_length": 0
    }}));
    let expect = "  Model\n    architecture        test    \n    parameters          7B      \n    context length      0       \n    embedding length    0       \n    quantization        FP16    \n\n";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn verbose_model() {
    let r = resp(json!({
        "details": {"family": "test", "parameter_size": "8B", "quantization_level": "FP16"},
        "parameters": "\n\t\t\tstop up",
        "model_info": {
            "general.architecture": "test",
            "general.parameter_count": 8_000_000_000u64,
            "some.true_bool": true,
            "some.false_bool": false,
            "test.context_length": 1000,
            "test.embedding_length": 11434
        },
        "tensors": [
            {"name": "blk.0.attn_k.weight", "type": "BF16", "shape": [42, 3117]},
            {"name": "blk.0.attn_q.weight", "type": "FP16", "shape": [3117, 42]}
        ]
    }));
    let expect = "  Model
    architecture        test     
    parameters          8B       
    context length      1000     
    embedding length    11434    
    quantization        FP16     

  Parameters
    stop    up    

  Metadata
    general.architecture       test     
    general.parameter_count    8e+09    
    some.false_bool            false    
    some.true_bool             true     
    test.context_length        1000     
    test.embedding_length      11434    

  Tensors
    blk.0.attn_k.weight    BF16    [42 3117]    
    blk.0.attn_q.weight    FP16    [3117 42]    

";
    assert_eq!(show_info(&r, true), expect);
}

#[test]
fn parameters_section() {
    let r = resp(
        json!({"parameters": "\n\t\t\tstop never\n\t\t\tstop gonna\n\t\t\tstop give\n\t\t\tstop you\n\t\t\tstop up\n\t\t\ttemperature 99"}),
    );
    let expect = "  Model
    architecture    test    
    parameters      7B      
    quantization    FP16    

  Parameters
    stop           never    
    stop           gonna    
    stop           give     
    stop           you      
    stop           up       
    temperature    99       

";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn projector_info() {
    let r = resp(json!({"projector_info": {
        "general.architecture": "clip",
        "general.parameter_count": 133_700_000u64,
        "clip.vision.embedding_length": 0,
        "clip.vision.projection_dim": 0
    }}));
    let expect = "  Model
    architecture    test    
    parameters      7B      
    quantization    FP16    

  Projector
    architecture        clip       
    parameters          133.70M    
    embedding length    0          
    dimensions          0          

";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn system_shows_two_lines_then_ellipsis() {
    let r = resp(json!({"system": "You are a pirate!\nAhoy, matey!\nWeigh anchor!\n\t\t\t"}));
    let expect = "  Model
    architecture    test    
    parameters      7B      
    quantization    FP16    

  System
    You are a pirate!    
    Ahoy, matey!         
    ...                  

";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn license_section() {
    let r = resp(json!({"license": "MIT License\nCopyright (c) Ollama\n"}));
    let expect = "  Model
    architecture    test    
    parameters      7B      
    quantization    FP16    

  License
    MIT License             
    Copyright (c) Ollama    

";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn capabilities_section() {
    let r = resp(json!({"capabilities": ["vision", "tools"]}));
    let expect = "  Model\n    architecture    test    \n    parameters      7B      \n    quantization    FP16    \n\n  Capabilities\n    vision    \n    tools     \n\n";
    assert_eq!(show_info(&r, false), expect);
}

#[test]
fn requires_row_follows_quantization() {
    let r = resp(json!({"requires": "0.19.0"}));
    let out = show_info(&r, false);
    let trimmed: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert_eq!(
        trimmed,
        vec![
            "  Model",
            "    architecture    test",
            "    parameters      7B",
            "    quantization    FP16",
            "    requires        0.19.0",
            ""
        ]
    );
}

#[test]
fn metadata_arrays_are_abbreviated() {
    assert_eq!(metadata_value(&json!([1, 2, 3])), "[1 2 3]");
    assert_eq!(
        metadata_value(&json!(["a", "b", "c", "d", "e"])),
        "[a b c ...+2 more]"
    );
}

#[test]
fn go_g_formats_like_go() {
    assert_eq!(go_g(8e9), "8e+09");
    assert_eq!(go_g(1000.0), "1000");
    assert_eq!(go_g(0.5), "0.5");
    assert_eq!(go_g(1e-5), "1e-05");
    assert_eq!(go_g(123456.0), "123456");
    assert_eq!(go_g(1234567.0), "1.234567e+06");
}
