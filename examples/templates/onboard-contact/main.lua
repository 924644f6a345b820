-- Creates the contact, then welcomes them.  ctx.call raises a structured
-- error (with code and detail) when a call is refused; it is not caught
-- here, so the run stops and reports it.
function run(input, ctx)
  local contact = ctx.call("crm.create_contact", { email = input.email, name = input.name })
  ctx.log("created contact " .. contact.id)
  local sent = ctx.call("mail.send", {
    to = { input.email },
    subject = "Welcome, " .. input.name,
    body = "Your account is ready.",
  })
  return { contact = contact.id, message = sent.message_id }
end
