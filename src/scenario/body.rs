//! Request bodies from a JSON Lines file: one JSON document per line, sent in
//! order and cycled.

use std::path::Path;

use bytes::Bytes;

/// Reads `path` (shown to the user as `shown`) into one body per non-blank
/// line; every line must be JSON. The error is one line naming the file and,
/// for bad content, the line.
pub fn read_jsonl(path: &Path, shown: &str) -> Result<Vec<Bytes>, String> {
    let text = crate::input::read_to_string(path, crate::input::Pipes::Allowed)
        .map_err(|e| format!("cannot read body file \"{shown}\": {e}"))?;
    let mut bodies = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            // serde_json's own "at line 1 column N" would misname the line.
            let msg = e.to_string();
            let what = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(w, _)| w);
            return Err(format!(
                "body file \"{shown}\" line {} is not JSON: {what} at column {}",
                i + 1,
                e.column()
            ));
        }
        bodies.push(Bytes::copy_from_slice(line.as_bytes()));
    }
    if bodies.is_empty() {
        return Err(format!("body file \"{shown}\" has no JSON lines"));
    }
    Ok(bodies)
}

#[cfg(test)]
mod tests {
    use super::read_jsonl;
    use std::io::Write;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(content.as_bytes()).expect("write temp file");
        f
    }

    #[test]
    fn reads_one_body_per_line_skipping_blank_lines() {
        let f = file("{\"a\":1}\n\n  [1,2]  \n");
        let bodies = read_jsonl(f.path(), "x.jsonl").expect("valid jsonl");
        assert_eq!(bodies, vec![&b"{\"a\":1}"[..], &b"[1,2]"[..]]);
    }

    #[test]
    fn names_the_bad_line_the_empty_file_and_the_missing_file() {
        let f = file("{\"a\":1}\n{oops\n");
        let e = read_jsonl(f.path(), "x.jsonl").expect_err("bad line");
        assert!(
            e.starts_with("body file \"x.jsonl\" line 2 is not JSON: "),
            "{e}"
        );
        let f = file("\n \n");
        assert_eq!(
            read_jsonl(f.path(), "e.jsonl"),
            Err("body file \"e.jsonl\" has no JSON lines".into())
        );
        let e = read_jsonl(std::path::Path::new("/nonexistent/n.jsonl"), "n.jsonl")
            .expect_err("missing");
        assert!(e.starts_with("cannot read body file \"n.jsonl\": "), "{e}");
    }
}
