//! secrets edit/show/init.
use crate::app::Ctx;
pub fn init(_k: Option<&std::path::Path>) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
pub fn run(_ctx: &mut Ctx, _s: crate::cli::SecretsCommand) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
