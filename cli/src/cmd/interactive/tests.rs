//! REPL slash commands and multi-line input, without a server.

use super::*;
use crate::env::parse_host;

type Buf = Arc<Mutex<Vec<u8>>>;

fn repl() -> (Repl, Buf, Buf) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let opts = RunOptions {
        model: "m".into(),
        ..Default::default()
    };
    let r = Repl::new(
        opts,
        false,
        Sink::Buffer(out.clone()),
        Sink::Buffer(err.clone()),
    );
    (r, out, err)
}

fn text(b: &Buf) -> String {
    String::from_utf8(b.lock().unwrap().clone()).unwrap()
}

fn client() -> Client {
    // Port 9 (discard) on loopback: nothing listens, every request fails fast.
    Client::new(parse_host("127.0.0.1:9"))
}

#[tokio::test]
async fn set_commands_print_upstream_messages() {
    let (mut r, out, _) = repl();
    let c = client();
    for line in [
        "/set verbose",
        "/set quiet",
        "/set wordwrap",
        "/set nowordwrap",
        "/set format json",
        "/set format xml",
        "/set noformat",
        "/set parameter temperature 0.5",
        "/set parameter stop a b",
        "/set parameter bogus 1",
        "/set bogus",
        "/bogus",
    ] {
        assert_eq!(r.handle(&c, line).await.unwrap(), Flow::Continue, "{line}");
    }
    assert_eq!(
        text(&out),
        "Set 'verbose' mode.\n\
         Set 'quiet' mode.\n\
         Set 'wordwrap' mode.\n\
         Set 'nowordwrap' mode.\n\
         Set format to 'json' mode.\n\
         Invalid or missing format. For 'json' mode use '/set format json'\n\
         Disabled format.\n\
         Set parameter 'temperature' to '0.5'\n\
         Set parameter 'stop' to 'a, b'\n\
         Couldn't set parameter: \"unknown parameter 'bogus'\"\n\
         Unknown command '/set bogus'. Type /? for help\n\
         Unknown command '/bogus'. Type /? for help\n"
    );
    assert_eq!(r.opts.options["stop"], serde_json::json!(["a", "b"]));
}

#[tokio::test]
async fn set_system_single_and_multi_line() {
    let (mut r, out, _) = repl();
    let c = client();
    r.handle(&c, "/set system be brief").await.unwrap();
    assert_eq!(r.opts.system, "be brief");
    r.handle(&c, "/set system \"\"\"line one").await.unwrap();
    assert!(r.use_alt);
    r.handle(&c, "line two\"\"\"").await.unwrap();
    assert!(!r.use_alt);
    // Upstream joins the opening line and the next without a newline; kept for parity.
    assert_eq!(r.opts.system, "line oneline two");
    assert_eq!(text(&out), "Set system message.\nSet system message.\n");
    let roles: Vec<&str> = r.opts.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, vec!["system", "system"]);
}

#[tokio::test]
async fn think_commands_set_the_think_value() {
    let (mut r, out, _) = repl();
    let c = client();
    r.handle(&c, "/set think high").await.unwrap();
    assert_eq!(r.opts.think, Some(Value::from("high")));
    r.handle(&c, "/set nothink").await.unwrap();
    assert_eq!(r.opts.think, Some(Value::Bool(false)));
    assert_eq!(
        text(&out),
        "Set 'think' mode to 'high'.\nSet 'nothink' mode.\n"
    );
}

#[tokio::test]
async fn help_goes_to_stderr_and_bye_exits() {
    let (mut r, _, err) = repl();
    let c = client();
    r.handle(&c, "/?").await.unwrap();
    let e = text(&err);
    assert!(e.starts_with("Available Commands:\n  /set            Set session variables\n"));
    assert!(
        e.ends_with("Use \"\"\" to begin a multi-line message.\n\n"),
        "{e:?}"
    );
    r.handle(&c, "/? shortcuts").await.unwrap();
    assert!(text(&err).contains("  Ctrl + d            Exit ollmlx (/bye)\n"));
    assert_eq!(r.handle(&c, "/bye").await.unwrap(), Flow::Exit);
    assert_eq!(r.handle(&c, "/exit").await.unwrap(), Flow::Exit);
}

#[tokio::test]
async fn clear_keeps_the_system_message() {
    let (mut r, out, _) = repl();
    let c = client();
    r.handle(&c, "/set system sys").await.unwrap();
    r.opts.messages.push(Message {
        role: "user".into(),
        content: "hi".into(),
        ..Default::default()
    });
    r.handle(&c, "/clear").await.unwrap();
    assert_eq!(r.opts.messages.len(), 1);
    assert!(text(&out).ends_with("Cleared session context\n"));
}

#[tokio::test]
async fn multiline_prompt_waits_for_closing_quotes() {
    let (mut r, _, _) = repl();
    let c = client();
    r.handle(&c, "\"\"\"first").await.unwrap();
    assert!(r.use_alt);
    assert!(r.opts.messages.is_empty());
    // The closing line sends the message; with no server the chat fails.
    assert!(r.handle(&c, "second\"\"\"").await.is_err());
    assert_eq!(r.opts.messages[0].content, "first\nsecond");
}

#[test]
fn save_request_uses_parent_and_session() {
    let opts = RunOptions {
        model: "m:latest".into(),
        parent_model: "base:1b".into(),
        system: "sys".into(),
        loaded_messages: vec![Message {
            role: "user".into(),
            content: "preset".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let req = new_create_request("mine", &opts);
    assert_eq!(req.from, "base:1b");
    assert_eq!(req.system, "sys");
    assert_eq!(req.messages.len(), 1);
    let opts = RunOptions {
        model: "m".into(),
        ..Default::default()
    };
    assert_eq!(new_create_request("mine", &opts).from, "m");
}
