//! reboot-test.
use crate::app::Ctx;
pub fn run(_ctx: &mut Ctx, _a: &crate::cli::RebootTestArgs) -> anyhow::Result<i32> {
    anyhow::bail!("in progress")
}
