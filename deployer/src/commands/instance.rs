//! stop, start, state.
use crate::app::Ctx;
pub fn stop(_ctx: &mut Ctx, _env: &str, _s: bool) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn start(_ctx: &mut Ctx, _env: &str) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn state(_ctx: &mut Ctx, _env: &str) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
