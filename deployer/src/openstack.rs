//! The compute instance's power state through OpenStack's APIs on OVH: Keystone v3 password
//! authentication scoped to the env's project, then Nova server actions (stop, start, shelve,
//! unshelve, reboot), status and console output (where cloud-init prints the host keys).

use std::time::Duration;

use serde_json::{json, Value};

use crate::contract::{OS_AUTH_URL, OS_DOMAIN_NAME};
use crate::credentials::Creds;

#[derive(Debug, thiserror::Error)]
pub enum OpenStackError {
    #[error("OpenStack credentials missing: {0}. Add them with `deployer secrets edit <env>`")]
    MissingCreds(String),
    #[error("cannot reach {url}: {detail}. Check your network and OS_AUTH_URL")]
    Http { url: String, detail: String },
    #[error("Keystone refused the login ({status}): check OS_USERNAME/OS_PASSWORD and OVH_CLOUD_PROJECT_ID in credentials/<env>.enc.env")]
    Auth { status: u16 },
    #[error("{what} failed ({status}): {body}")]
    Api {
        what: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer from OpenStack: {0}")]
    Unexpected(String),
}

/// The instance's state as Nova reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// ACTIVE, SHUTOFF, SHELVED_OFFLOADED, REBOOT, BUILD, ERROR...
    pub status: String,
    /// The task in progress (powering-off, rebooting...), if any.
    pub task: Option<String>,
}

/// Nova actions the deployer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Shelve,
    Unshelve,
    SoftReboot,
}

impl Action {
    pub fn body(self) -> Value {
        match self {
            Action::Stop => json!({"os-stop": null}),
            Action::Start => json!({"os-start": null}),
            Action::Shelve => json!({"shelve": null}),
            Action::Unshelve => json!({"unshelve": null}),
            Action::SoftReboot => json!({"reboot": {"type": "SOFT"}}),
        }
    }

    /// The status Nova reports once the action is done.
    pub fn target_status(self) -> &'static [&'static str] {
        match self {
            Action::Stop => &["SHUTOFF"],
            Action::Start | Action::Unshelve | Action::SoftReboot => &["ACTIVE"],
            Action::Shelve => &["SHELVED_OFFLOADED", "SHELVED"],
        }
    }
}

/// Keystone v3 password auth request body, scoped to the project.
pub fn auth_body(user: &str, password: &str, project_id: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": OS_DOMAIN_NAME}, "password": password}}},
        "scope": {"project": {"id": project_id}}
    }})
}

/// The public compute endpoint for `region` in a Keystone token's catalog.
pub fn compute_endpoint(token_body: &Value, region: &str) -> Result<String, OpenStackError> {
    let catalog = token_body
        .pointer("/token/catalog")
        .and_then(Value::as_array)
        .ok_or_else(|| OpenStackError::Unexpected("token without catalog".into()))?;
    let mut regions = Vec::new();
    for svc in catalog.iter().filter(|s| s["type"] == "compute") {
        for ep in svc["endpoints"].as_array().into_iter().flatten() {
            let r = ep["region_id"]
                .as_str()
                .or(ep["region"].as_str())
                .unwrap_or("");
            if ep["interface"] == "public" {
                if r == region {
                    if let Some(url) = ep["url"].as_str() {
                        return Ok(url.trim_end_matches('/').to_owned());
                    }
                }
                regions.push(r.to_owned());
            }
        }
    }
    Err(OpenStackError::Unexpected(format!(
        "no public compute endpoint in region {region:?} (found: {}); check OS_REGION_NAME",
        if regions.is_empty() {
            "none".into()
        } else {
            regions.join(", ")
        }
    )))
}

/// Parses `GET /servers/{id}`.
pub fn server_state(body: &Value) -> Result<ServerState, OpenStackError> {
    let status = body
        .pointer("/server/status")
        .and_then(Value::as_str)
        .ok_or_else(|| OpenStackError::Unexpected("server without status".into()))?;
    Ok(ServerState {
        status: status.to_owned(),
        task: body
            .pointer("/server/OS-EXT-STS:task_state")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// A logged-in Nova client for one project and region.
pub struct Nova {
    http: reqwest::Client,
    token: String,
    compute: String,
}

impl Nova {
    pub async fn login(creds: &Creds, region: &str) -> Result<Self, OpenStackError> {
        let need = |k: &str| {
            creds
                .get(k)
                .ok_or_else(|| OpenStackError::MissingCreds(k.to_owned()))
        };
        let user = need("OS_USERNAME")?;
        let password = need("OS_PASSWORD")?;
        let project = need("OVH_CLOUD_PROJECT_ID")?;
        let auth_url = creds.get("OS_AUTH_URL").unwrap_or(OS_AUTH_URL);
        let url = format!("{}/auth/tokens", auth_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| OpenStackError::Http {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let resp = http
            .post(&url)
            .json(&auth_body(user, password, project))
            .send()
            .await
            .map_err(|e| OpenStackError::Http {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(OpenStackError::Auth { status });
        }
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OpenStackError::Unexpected("no X-Subject-Token".into()))?
            .to_owned();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| OpenStackError::Unexpected(e.to_string()))?;
        let compute = compute_endpoint(&body, region)?;
        Ok(Self {
            http,
            token,
            compute,
        })
    }

    async fn call(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, OpenStackError> {
        let resp = req
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .map_err(|e| OpenStackError::Http {
                url: self.compute.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(OpenStackError::Api {
                what: what.to_owned(),
                status,
                body: text.chars().take(500).collect(),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| OpenStackError::Unexpected(e.to_string()))
    }

    pub async fn state(&self, server: &str) -> Result<ServerState, OpenStackError> {
        let body = self
            .call(
                "server status",
                self.http.get(format!("{}/servers/{server}", self.compute)),
            )
            .await?;
        server_state(&body)
    }

    pub async fn action(&self, server: &str, action: Action) -> Result<(), OpenStackError> {
        self.call(
            &format!("{action:?}"),
            self.http
                .post(format!("{}/servers/{server}/action", self.compute))
                .json(&action.body()),
        )
        .await?;
        Ok(())
    }

    /// The instance's console log (where cloud-init prints the SSH host keys).
    pub async fn console(&self, server: &str) -> Result<String, OpenStackError> {
        let body = self
            .call(
                "console output",
                self.http
                    .post(format!("{}/servers/{server}/action", self.compute))
                    .json(&json!({"os-getConsoleOutput": {"length": -1}})),
            )
            .await?;
        body["output"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| OpenStackError::Unexpected("console output without text".into()))
    }

    /// Polls until the server reaches one of `targets` (or `timeout` passes).
    pub async fn wait_for(
        &self,
        server: &str,
        targets: &[&str],
        timeout: Duration,
        mut on_state: impl FnMut(&ServerState),
    ) -> Result<ServerState, OpenStackError> {
        let start = std::time::Instant::now();
        loop {
            let s = self.state(server).await?;
            on_state(&s);
            if targets.contains(&s.status.as_str()) && s.task.is_none() {
                return Ok(s);
            }
            if s.status == "ERROR" || start.elapsed() > timeout {
                return Err(OpenStackError::Unexpected(format!(
                    "instance is {} (task {:?}) after {}s, expected {}",
                    s.status,
                    s.task,
                    start.elapsed().as_secs(),
                    targets.join(" or ")
                )));
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_regions_public_compute_endpoint() {
        let token = json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "GRA9", "url": "https://auth"}]},
            {"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "GRA9", "url": "https://internal"},
                {"interface": "public", "region_id": "SBG5", "url": "https://compute.sbg5/v2.1/"},
                {"interface": "public", "region_id": "GRA9", "url": "https://compute.gra9/v2.1/"}
            ]}
        ]}});
        assert_eq!(
            compute_endpoint(&token, "GRA9").unwrap(),
            "https://compute.gra9/v2.1"
        );
        let err = compute_endpoint(&token, "BHS5").unwrap_err().to_string();
        assert!(err.contains("SBG5, GRA9"), "{err}");
        assert!(compute_endpoint(&json!({}), "GRA9").is_err());
    }

    #[test]
    fn actions_and_states() {
        assert_eq!(Action::Shelve.body(), json!({"shelve": null}));
        assert_eq!(Action::SoftReboot.body()["reboot"]["type"], "SOFT");
        let s =
            server_state(&json!({"server": {"status": "SHUTOFF", "OS-EXT-STS:task_state": null}}))
                .unwrap();
        assert_eq!(
            s,
            ServerState {
                status: "SHUTOFF".into(),
                task: None
            }
        );
        assert!(server_state(&json!({"server": {}})).is_err());
        let body = auth_body("u", "p", "proj");
        assert_eq!(body["auth"]["scope"]["project"]["id"], "proj");
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
    }
}
