//! status, logs, ssh.
use crate::app::Ctx;
pub fn status(_ctx: &mut Ctx, _env: &str) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn logs(_ctx: &mut Ctx, _a: &crate::cli::LogsArgs) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn ssh(_ctx: &mut Ctx, _env: &str, _c: &[String]) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
