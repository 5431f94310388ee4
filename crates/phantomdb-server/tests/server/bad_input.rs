//! Broken clients: each gets a FATAL error on its own connection and the server keeps
//! serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::TestServer;

/// Sends `bytes` on a new connection and reads until the server closes it.
fn send_raw(server: &TestServer, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    reply
}

/// Whether `reply` is an ErrorResponse carrying `code`.
fn is_error_with(reply: &[u8], code: &str) -> bool {
    reply.first() == Some(&b'E') && String::from_utf8_lossy(reply).contains(code)
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_clients_get_an_error_and_the_server_keeps_serving() {
    let server = TestServer::start("CREATE TABLE t(id INT)");
    let healthy = server.admin().await;

    // Not PostgreSQL at all.
    let reply =
        tokio::task::block_in_place(|| send_raw(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(
        is_error_with(&reply, "08P01"),
        "garbage start-up: {reply:?}"
    );

    // A start-up packet whose length is impossible (shorter than its own header).
    let reply = tokio::task::block_in_place(|| send_raw(&server, &[0, 0, 0, 2, 0, 3, 0, 0]));
    assert!(is_error_with(&reply, "08P01"), "lying length: {reply:?}");

    // A start-up packet over the protocol's size limit.
    let mut huge = 0x3fff_ffffu32.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0, 3, 0, 0]);
    let reply = tokio::task::block_in_place(|| send_raw(&server, &huge));
    assert!(
        is_error_with(&reply, "08P01"),
        "oversized message: {reply:?}"
    );

    // A client that hangs up in the middle of a message.
    tokio::task::block_in_place(|| {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.write_all(&[0, 0, 0, 40, 0, 3]).expect("write");
    });

    // Everyone else is still served.
    healthy
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .expect("still serving");
    let again = server.admin().await;
    let n: i64 = again
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .expect("new login")
        .get(0);
    assert_eq!(n, 1);
}
