//! A real S3-compatible server for tests: `python3 -m moto.server` on 127.0.0.1, with a few
//! boto3 helpers to create buckets and look at objects.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start() -> Self {
        super::require_tool("python3", "Python 3");
        let probe = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .output()
            .expect("python3 runs");
        assert!(
            probe.status.success(),
            "moto server is missing: pip install 'moto[server]'"
        );
        let port = super::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        assert!(
            super::wait_port(port, Duration::from_secs(30)),
            "moto did not start on port {port}"
        );
        Self { port, child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn py(&self, code: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}",
            self.endpoint()
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.py(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.py(&format!(
            "for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', []): print(o['Key'])"
        ))
        .lines()
        .map(str::to_owned)
        .collect()
    }

    pub fn get(&self, bucket: &str, key: &str) -> String {
        self.py(&format!(
            "import sys\nsys.stdout.write(s3.get_object(Bucket='{bucket}', Key='{key}')['Body'].read().decode())"
        ))
    }

    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        self.py(&format!(
            "s3.put_object(Bucket='{bucket}', Key='{key}', Body={body:?})"
        ));
    }

    pub fn delete(&self, bucket: &str, key: &str) {
        self.py(&format!("s3.delete_object(Bucket='{bucket}', Key='{key}')"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
