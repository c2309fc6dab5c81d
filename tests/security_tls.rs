//! TLS and WebSocket end to end with certificates made by rcgen: MQTT over TLS with the right
//! CA (rumqttc and mosquitto_pub) and the wrong one, MQTT over plain and secure WebSocket, and
//! a renewed certificate picked up without a restart.

mod security_support;

use std::path::Path;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::{free_port, TestDb};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rumqttc::{TlsConfiguration, Transport};
use security_support::{add_account, now_ms, position, start, v4};

/// A CA and a server certificate (localhost, 127.0.0.1) it signed: (CA PEM, cert PEM, key PEM).
fn pki(name: &str) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Replaces a file atomically (as certificate renewers do).
fn install(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tls_opts(id: &str, port: u16, user: &str, pass: &str, ca: &str) -> v4::MqttOptions {
    let mut o = v4::opts(id, port, user, pass);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: ca.as_bytes().to_vec(),
        alpn: None,
        client_auth: None,
    }));
    o
}

async fn publish_acked(opts: v4::MqttOptions, user: &str) -> Result<(), String> {
    let (c, mut ev) = v4::connect(opts).await.map_err(|e| e.to_string())?;
    c.publish(
        format!("devices/{user}/positions"),
        v4::QoS::AtLeastOnce,
        false,
        position(now_ms() - 1000),
    )
    .await
    .map_err(|e| e.to_string())?;
    match v4::next_matching(&mut ev, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await
    {
        Ok(Some(())) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_wss_and_ws_with_right_and_wrong_ca_and_certificate_reload() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = pki("first");
    let (ca2, cert2, key2) = pki("second");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    install(&cert_path, &cert1);
    install(&key_path, &key1);
    let ca1_path = dir.path().join("ca1.pem");
    std::fs::write(&ca1_path, &ca1).unwrap();
    let ca2_path = dir.path().join("ca2.pem");
    std::fs::write(&ca2_path, &ca2).unwrap();
    let (mqtts, wss, ws) = (free_port(), free_port(), free_port());
    let ingest = start(
        &db,
        &dir,
        &[
            "--mqtts-listen",
            &format!("127.0.0.1:{mqtts}"),
            "--wss-listen",
            &format!("127.0.0.1:{wss}"),
            "--ws-listen",
            &format!("127.0.0.1:{ws}"),
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
            "--tls-reload-interval",
            "1s",
        ],
    );
    let secret = add_account(&db.url, "dev-1", false);

    // Right CA: accepted and acknowledged. Wrong CA: the TLS handshake fails.
    publish_acked(tls_opts("tls-1", mqtts, "dev-1", &secret, &ca1), "dev-1")
        .await
        .expect("TLS with the right CA");
    let wrong = publish_acked(tls_opts("tls-2", mqtts, "dev-1", &secret, &ca2), "dev-1").await;
    assert!(
        wrong.is_err(),
        "a client trusting another CA must not connect"
    );
    // The plain port never speaks TLS, and a TLS port refuses plain MQTT.
    assert!(
        publish_acked(v4::opts("plain-on-tls", mqtts, "dev-1", &secret), "dev-1")
            .await
            .is_err()
    );

    // mosquitto_pub over TLS, right and wrong CA.
    let mosq = |ca: &Path| {
        std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtts.to_string(),
                "--cafile",
                ca.to_str().unwrap(),
                "-u",
                "dev-1",
                "-P",
                &secret,
            ])
            .args([
                "-t",
                "devices/dev-1/positions",
                "-q",
                "1",
                "-m",
                &position(now_ms() - 2000),
            ])
            .output()
            .expect("mosquitto_pub installed")
    };
    let out = mosq(&ca1_path);
    assert!(
        out.status.success(),
        "mosquitto_pub with the right CA: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !mosq(&ca2_path).status.success(),
        "mosquitto_pub with the wrong CA must fail"
    );

    // WebSocket (browsers): plain and secure.
    let mut o = rumqttc::MqttOptions::new("ws-1", format!("ws://127.0.0.1:{ws}/mqtt"), ws);
    o.set_credentials("dev-1", &secret)
        .set_keep_alive(Duration::from_secs(30))
        .set_transport(Transport::Ws);
    publish_acked(o, "dev-1")
        .await
        .expect("MQTT over WebSocket");
    let mut o = rumqttc::MqttOptions::new("wss-1", format!("wss://127.0.0.1:{wss}/mqtt"), wss);
    o.set_credentials("dev-1", &secret)
        .set_keep_alive(Duration::from_secs(30));
    o.set_transport(Transport::wss_with_config(TlsConfiguration::Simple {
        ca: ca1.as_bytes().to_vec(),
        alpn: None,
        client_auth: None,
    }));
    publish_acked(o, "dev-1")
        .await
        .expect("MQTT over secure WebSocket");

    // A session opened before the renewal survives it.
    let (live, mut live_ev) = v4::connect(tls_opts("tls-live", mqtts, "dev-1", &secret, &ca1))
        .await
        .unwrap();

    // Renewal: new files from another CA; within a few seconds new clients see the new chain.
    install(&key_path, &key2);
    install(&cert_path, &cert2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if publish_acked(tls_opts("tls-3", mqtts, "dev-1", &secret, &ca2), "dev-1")
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not picked up; log:\n{}",
            ingest.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        publish_acked(tls_opts("tls-4", mqtts, "dev-1", &secret, &ca1), "dev-1")
            .await
            .is_err(),
        "old chain no longer served"
    );
    let mut o = rumqttc::MqttOptions::new("wss-2", format!("wss://127.0.0.1:{wss}/mqtt"), wss);
    o.set_credentials("dev-1", &secret)
        .set_keep_alive(Duration::from_secs(30));
    o.set_transport(Transport::wss_with_config(TlsConfiguration::Simple {
        ca: ca2.as_bytes().to_vec(),
        alpn: None,
        client_auth: None,
    }));
    publish_acked(o, "dev-1")
        .await
        .expect("WSS with the renewed certificate");
    live.publish(
        "devices/dev-1/positions",
        v4::QoS::AtLeastOnce,
        false,
        position(now_ms() - 3000),
    )
    .await
    .unwrap();
    let ack = v4::next_matching(&mut live_ev, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await;
    assert!(
        matches!(ack, Ok(Some(()))),
        "a session from before the renewal keeps working: {ack:?}"
    );

    // A broken renewal (key not matching) keeps the current certificate in service.
    install(&key_path, &key1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish_acked(tls_opts("tls-5", mqtts, "dev-1", &secret, &ca2), "dev-1")
        .await
        .expect("still serving the last good pair");
    assert!(
        ingest.log().contains("TLS files unusable"),
        "a broken pair is reported"
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

/// Reads until the server closes; true when it did within `wait`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_after_the_tls_or_websocket_handshake_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki("silent");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    install(&cert_path, &cert);
    install(&key_path, &key);
    let (mqtts, ws) = (free_port(), free_port());
    let ingest = start(
        &db,
        &dir,
        &[
            "--mqtts-listen",
            &format!("127.0.0.1:{mqtts}"),
            "--ws-listen",
            &format!("127.0.0.1:{ws}"),
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
            "--handshake-timeout",
            "2s",
        ],
    );

    // TLS completes, then nothing: closed by the handshake timeout.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", mqtts))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert!(
        closed_within(&mut tls, Duration::from_secs(8)).await,
        "a silent client after TLS must be closed"
    );

    // A TCP connection to the TLS port that never says hello: closed too.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", mqtts))
        .await
        .unwrap();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(8)).await,
        "a silent client before TLS must be closed"
    );

    // The WebSocket upgrade completes, then nothing: closed.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", ws))
        .await
        .unwrap();
    tcp.write_all(
        format!(
            "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{ws}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "upgrade accepted");
    assert!(
        closed_within(&mut tcp, Duration::from_secs(8)).await,
        "a silent client after the WebSocket upgrade must be closed"
    );

    let failures = security_support::metric(
        &ingest,
        "ingest_mqtt_handshake_failures_total",
        &["reason=\"timeout\""],
    );
    assert!(failures >= 3.0, "closures counted: {failures}");
    drop(ingest);
    db.drop_now().await.unwrap();
}
