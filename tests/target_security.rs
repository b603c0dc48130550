//! The target's fault injection is not an open door: with a token set and a
//! non-loopback listen address, a peer other than the host itself (here
//! 127.0.0.2 stands in for a remote machine) can neither inject faults nor
//! touch the admin API without the token; the token never shows in output.

use std::net::{IpAddr, Ipv4Addr};

use slocheck::target::{TargetConfig, TargetHandle};

const TOKEN: &str = "s3cret-token-value";

async fn start() -> TargetHandle {
    let cfg = TargetConfig {
        listen: "0.0.0.0:0".parse().expect("addr"),
        admin_token: Some(TOKEN.to_string()),
        ..TargetConfig::default()
    };
    TargetHandle::start(cfg)
        .await
        .expect("target starts with a token")
}

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .expect("client")
}

async fn predict(c: &reqwest::Client, url: &reqwest::Url, token: Option<&str>) -> u16 {
    let mut req = c
        .post(url.join("predict").expect("url"))
        .header("x-slocheck-fault", "status=503")
        .body(r#"{"features":[5.1,3.5,1.4,0.2]}"#);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("answer").status().as_u16()
}

#[tokio::test]
async fn remote_peers_need_the_token_for_faults_and_admin() {
    let t = start().await;
    let url = t.base_url();
    let remote = client_from([127, 0, 0, 2]);
    let local = client_from([127, 0, 0, 1]);

    assert_eq!(
        predict(&remote, &url, None).await,
        200,
        "fault header from a remote peer must be ignored"
    );
    assert_eq!(
        predict(&remote, &url, Some("wrong")).await,
        200,
        "a wrong token is no token"
    );
    assert_eq!(
        predict(&remote, &url, Some(TOKEN)).await,
        503,
        "with the token the fault applies"
    );
    assert_eq!(
        predict(&local, &url, None).await,
        503,
        "the host itself (load generator) may inject"
    );

    let admin = url.join("admin/faults").expect("url");
    for c in [&remote, &local] {
        let s = c
            .get(admin.clone())
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16();
        assert_eq!(s, 401, "admin without token");
        let s = c
            .put(admin.clone())
            .body(r#"{"error_rate":1.0}"#)
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16();
        assert_eq!(s, 401, "admin write without token");
    }
    let s = remote
        .get(admin.clone())
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16();
    assert_eq!(s, 200);

    // Nothing the server exposes repeats the token.
    let metrics = local
        .get(url.join("metrics").expect("url"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let faults = remote
        .get(admin)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin")
        .text()
        .await
        .expect("text");
    assert!(!metrics.contains(TOKEN) && !faults.contains(TOKEN));
    assert!(
        !format!(
            "{:?}",
            TargetConfig {
                admin_token: Some(TOKEN.into()),
                ..TargetConfig::default()
            }
        )
        .contains(TOKEN)
    );
    t.shutdown().await;
}
