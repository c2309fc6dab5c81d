//! Raw MQTT 3.1.1 bytes for tests and benches that must control the wire themselves (hostile
//! input, pipelined publishers): the remaining-length varint, length-prefixed strings, packets.

/// MQTT remaining-length varint.
pub fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// A length-prefixed MQTT string (bytes as given, valid UTF-8 or not).
pub fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// A packet: first byte, remaining length, body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    varint(body.len(), &mut p);
    p.extend_from_slice(body);
    p
}

/// CONNECT (MQTT 3.1.1, clean session, keep-alive 30 s), with username and password when given.
pub fn connect(client_id: &str, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4);
    body.push(if credentials.is_some() { 0xC2 } else { 0x02 });
    body.extend_from_slice(&30u16.to_be_bytes());
    string(client_id.as_bytes(), &mut body);
    if let Some((user, pass)) = credentials {
        string(user.as_bytes(), &mut body);
        string(pass.as_bytes(), &mut body);
    }
    packet(0x10, &body)
}
