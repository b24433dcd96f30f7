//! `devstack summary`: the stack's state, each region's given several manifests.

use super::Stacks;
use eventline_devstack::state::StackState;
use eventline_devstack::DevstackError;

/// Prints what each region's tables, bucket and queues hold.
pub async fn run(stacks: Stacks) -> Result<(), DevstackError> {
    for (manifest, sdk) in &stacks {
        if stacks.len() > 1 {
            println!("{}:", manifest.region);
        }
        print!(
            "{}",
            StackState::read(manifest, sdk)
                .await?
                .render(&manifest.endpoint)
        );
    }
    Ok(())
}
