//! The app's components, one file each.

mod header;
mod name_prompt;
mod room_view;

pub use header::Header;
pub use name_prompt::NamePrompt;
pub use room_view::RoomView;
