//! The welcome screen: a display name and Enter (guest), or an account — sign in,
//! create one, forgot password, choose a new one from an emailed link.
//!
//! Every field is checked as the person types with the rules from
//! `natter_protocol::validate` (the server runs the same ones); the server's answer
//! (wrong password, name reserved, link expired) appears next to the form.

use leptos::prelude::*;
use leptos::task::spawn_local;
use natter_protocol::account::{ApiError, LoginRequest, SignupRequest};
use natter_protocol::validate;

use crate::account::{self, EmailLink};
use crate::chat::Chat;
use crate::components::NamePrompt;
use crate::state::form;

/// Which form is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Just a display name (the default: one field and Enter).
    Guest,
    /// Email and password.
    SignIn,
    /// Email, name and password.
    SignUp,
    /// Email, for a reset link.
    Forgot,
    /// A new password, with the token from the emailed link.
    Reset(String),
}

/// The welcome screen. Opened from an emailed link, it confirms the address or asks
/// for the new password straight away.
#[component]
pub fn Welcome() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let mode = RwSignal::new(Mode::Guest);
    // Good news from the server (check your email, verified, password changed).
    let notice = RwSignal::new(None::<String>);
    match account::take_email_link() {
        Some(EmailLink::Verify(token)) => {
            mode.set(Mode::SignIn);
            notice.set(Some("Confirming your email…".into()));
            spawn_local(async move {
                match account::verify(&token).await {
                    Ok(accepted) => notice.set(Some(accepted.message)),
                    Err(err) => {
                        notice.set(None);
                        chat.set_error(form::ACCOUNT, Some(err.message));
                    }
                }
            });
        }
        Some(EmailLink::Reset(token)) => mode.set(Mode::Reset(token)),
        None => {}
    }
    let switch = move |to: Mode| {
        move |_| {
            notice.set(None);
            chat.set_error(form::ACCOUNT, None);
            mode.set(to.clone());
        }
    };
    view! {
        <main class="name-prompt">
            <p class="notice" role="status">{move || notice.get()}</p>
            <p class="error" role="alert">{move || chat.error(form::ACCOUNT)}</p>
            {move || match mode.get() {
                Mode::Guest => view! {
                    <NamePrompt/>
                    <p class="switch">
                        "Keep your name for good: "
                        <button class="link" on:click=switch(Mode::SignIn)>"Sign in"</button>
                        " or "
                        <button class="link" on:click=switch(Mode::SignUp)>"create an account"</button>
                    </p>
                }.into_any(),
                Mode::SignIn => view! {
                    <SignInForm/>
                    <p class="switch">
                        <button class="link" on:click=switch(Mode::Forgot)>"Forgot your password?"</button>
                        " · "
                        <button class="link" on:click=switch(Mode::SignUp)>"Create an account"</button>
                        " · "
                        <button class="link" on:click=switch(Mode::Guest)>"Continue as guest"</button>
                    </p>
                }.into_any(),
                Mode::SignUp => view! {
                    <SignUpForm notice/>
                    <p class="switch">
                        <button class="link" on:click=switch(Mode::SignIn)>"I have an account"</button>
                        " · "
                        <button class="link" on:click=switch(Mode::Guest)>"Continue as guest"</button>
                    </p>
                }.into_any(),
                Mode::Forgot => view! {
                    <ForgotForm notice/>
                    <p class="switch">
                        <button class="link" on:click=switch(Mode::SignIn)>"Back to sign in"</button>
                    </p>
                }.into_any(),
                Mode::Reset(token) => view! {
                    <ResetForm token notice mode/>
                    <p class="switch">
                        <button class="link" on:click=switch(Mode::SignIn)>"Back to sign in"</button>
                    </p>
                }.into_any(),
            }}
        </main>
    }
}

/// The message to show under a field: the shared rule's complaint while typing (not
/// for an empty field), else the server's, if it named this field.
fn field_error(
    value: RwSignal<String>,
    rule: fn(&str) -> Result<(), String>,
    server: RwSignal<Option<ApiError>>,
    field: &'static str,
) -> impl Fn() -> Option<String> + Copy {
    move || {
        let typed = value.with(|v| if v.is_empty() { None } else { rule(v).err() });
        typed.or_else(|| {
            server.with(|e| {
                e.as_ref()
                    .filter(|e| e.field.as_deref() == Some(field))
                    .map(|e| e.message.clone())
            })
        })
    }
}

/// The server's refusal that belongs to no single field.
fn form_error(server: RwSignal<Option<ApiError>>) -> impl Fn() -> Option<String> + Copy {
    move || {
        server.with(|e| {
            e.as_ref()
                .filter(|e| e.field.is_none())
                .map(|e| e.message.clone())
        })
    }
}

fn email_rule(value: &str) -> Result<(), String> {
    validate::email(value).map(|_| ())
}

fn name_rule(value: &str) -> Result<(), String> {
    validate::display_name(value).map(|_| ())
}

fn password_rule(value: &str) -> Result<(), String> {
    validate::password(value)
}

/// Any non-empty password may be tried at sign-in (old accounts may predate a rule).
fn any_password(_: &str) -> Result<(), String> {
    Ok(())
}

/// One labelled input with its inline error.
#[component]
fn Field(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    value: RwSignal<String>,
    error: impl Fn() -> Option<String> + Copy + Send + Sync + 'static,
    #[prop(optional)] autofocus: bool,
    server: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    view! {
        <label for=id>{label}</label>
        <input
            id=id
            type=kind
            autocomplete=autocomplete
            autofocus=autofocus
            aria-invalid=move || error().is_some().to_string()
            aria-describedby=error_id.clone()
            prop:value=move || value.get()
            on:input=move |ev| {
                value.set(event_target_value(&ev));
                server.set(None);
            }
        />
        <span class="error field-error" id=error_id>{error}</span>
    }
}

#[component]
fn SignInForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let server = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let email_error = field_error(email, email_rule, server, "email");
    let password_error = field_error(password, any_password, server, "password");
    let ready =
        move || !busy.get() && email_rule(&email.get()).is_ok() && password.with(|p| !p.is_empty());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        busy.set(true);
        let request = LoginRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match account::sign_in(&request).await {
                Ok(account) => chat.signed_in(account),
                Err(err) => server.set(Some(err)),
            }
            busy.set(false);
        });
    };
    view! {
        <form on:submit=submit aria-label="Sign in">
            <h2>"Sign in"</h2>
            <Field id="signin-email" label="Email" kind="email" autocomplete="username" value=email error=email_error autofocus=true server/>
            <Field id="signin-password" label="Password" kind="password" autocomplete="current-password" value=password error=password_error server/>
            <button type="submit" disabled=move || !ready()>"Sign in"</button>
            <p class="error" role="alert">{form_error(server)}</p>
        </form>
    }
}

#[component]
fn SignUpForm(notice: RwSignal<Option<String>>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let server = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let email_error = field_error(email, email_rule, server, "email");
    let name_error = field_error(name, name_rule, server, "name");
    let password_error = field_error(password, password_rule, server, "password");
    let ready = move || {
        !busy.get()
            && email_rule(&email.get()).is_ok()
            && name_rule(&name.get()).is_ok()
            && password_rule(&password.get()).is_ok()
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        busy.set(true);
        let request = SignupRequest {
            email: email.get_untracked(),
            name: name.get_untracked(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match account::sign_up(&request).await {
                Ok(accepted) => {
                    password.set(String::new());
                    notice.set(Some(accepted.message));
                }
                Err(err) => server.set(Some(err)),
            }
            busy.set(false);
        });
    };
    view! {
        <form on:submit=submit aria-label="Create an account">
            <h2>"Create an account"</h2>
            <Field id="signup-email" label="Email" kind="email" autocomplete="email" value=email error=email_error autofocus=true server/>
            <Field id="signup-name" label="Display name" kind="text" autocomplete="nickname" value=name error=name_error server/>
            <Field id="signup-password" label="Password" kind="password" autocomplete="new-password" value=password error=password_error server/>
            <button type="submit" disabled=move || !ready()>"Create account"</button>
            <p class="error" role="alert">{form_error(server)}</p>
        </form>
    }
}

#[component]
fn ForgotForm(notice: RwSignal<Option<String>>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let server = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let email_error = field_error(email, email_rule, server, "email");
    let ready = move || !busy.get() && email_rule(&email.get()).is_ok();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        busy.set(true);
        let address = email.get_untracked();
        spawn_local(async move {
            match account::recover(&address).await {
                Ok(accepted) => notice.set(Some(accepted.message)),
                Err(err) => server.set(Some(err)),
            }
            busy.set(false);
        });
    };
    view! {
        <form on:submit=submit aria-label="Forgot password">
            <h2>"Forgot your password?"</h2>
            <Field id="forgot-email" label="Email" kind="email" autocomplete="username" value=email error=email_error autofocus=true server/>
            <button type="submit" disabled=move || !ready()>"Email me a link"</button>
            <p class="error" role="alert">{form_error(server)}</p>
        </form>
    }
}

#[component]
fn ResetForm(
    token: String,
    notice: RwSignal<Option<String>>,
    mode: RwSignal<Mode>,
) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let server = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let password_error = field_error(password, password_rule, server, "password");
    let ready = move || !busy.get() && password_rule(&password.get()).is_ok();
    let token = StoredValue::new(token);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !ready() {
            return;
        }
        busy.set(true);
        let new_password = password.get_untracked();
        let token = token.get_value();
        spawn_local(async move {
            match account::reset(&token, &new_password).await {
                Ok(accepted) => {
                    notice.set(Some(accepted.message));
                    mode.set(Mode::SignIn);
                }
                Err(err) => server.set(Some(err)),
            }
            busy.set(false);
        });
    };
    view! {
        <form on:submit=submit aria-label="Choose a new password">
            <h2>"Choose a new password"</h2>
            <Field id="reset-password" label="New password" kind="password" autocomplete="new-password" value=password error=password_error autofocus=true server/>
            <button type="submit" disabled=move || !ready()>"Set password"</button>
            <p class="error" role="alert">{form_error(server)}</p>
        </form>
    }
}
