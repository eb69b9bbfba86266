//! The app's components, one concern per file.

mod attachments;
mod composer;
mod dialogs;
mod formatted;
mod header;
mod mention_picker;
mod message_list;
mod message_tools;
mod name_prompt;
mod people;
mod popups;
mod room_view;
mod sidebar;
mod welcome;

pub use composer::{drop_files, Composer};
pub use header::Header;
pub use message_list::{MessageList, TypingLine};
pub use name_prompt::NamePrompt;
pub use popups::Popups;
pub use room_view::{MuteButton, RoomView, COMPOSER_ID};
pub use sidebar::Sidebar;
pub use welcome::Welcome;
