//! Entry point of the browser bundle: mount the app, nothing else.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(natter_web::App);
}
