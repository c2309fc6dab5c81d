//! db stop, db start.
use crate::app::Ctx;
pub fn stop(_ctx: &mut Ctx, _env: &str, _y: bool) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn start(_ctx: &mut Ctx, _env: &str, _y: bool) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
