// Every string of the operator app, in English and Russian. The language is the operator's
// choice (localStorage), by default the browser's.
export const LANGUAGES = [['en', 'English'], ['ru', 'Русский']];

const en = {
  // shell
  home: 'Parley home', main_nav: 'Main', inbox: 'Inbox', settings: 'Settings', language: 'Language',
  log_out: 'Log out', skip_to_content: 'Skip to content', live: 'Live', connecting: 'Connecting…', offline: 'Offline',
  reconnecting: 'Connection lost — reconnecting…', reconnected: 'Reconnected — up to date',
  session_ended: 'Your session has ended. Please log in again.',
  offline_start: 'No connection to the server. Retrying…', network_error: 'No connection to the server. Try again.',
  enable_notifications: 'Enable desktop notifications', notifications_enabled: 'Desktop notifications are on.',
  notifications_denied: 'The browser blocks notifications for this site; allow them in its site settings.',
  loading: 'Loading…', error: 'Something went wrong', dismiss: 'Dismiss', ok: 'OK', open: 'Open',
  // login
  login_title: 'Log in to Parley', project: 'Project', email: 'Email', password: 'Password', log_in: 'Log in',
  // inbox
  inbox_tabs: 'Conversations', tab_new: 'New', tab_mine: 'Mine', tab_all: 'All',
  count_conversations: '{n} conversations', empty_new: 'No new conversations. New ones appear here at once.',
  empty_mine: 'No conversations in your work.', empty_all: 'No conversations yet.',
  visitor: 'Visitor', unread_n: '{n} unread', waiting: 'Waiting for a reply', unassigned: 'Unassigned',
  you_prefix: 'You:', no_messages: 'No messages yet',
  status_new: 'New', status_in_work: 'In work', status_closed: 'Closed',
  // conversation
  conversation: 'Conversation', pick_conversation: 'Pick a conversation from the inbox.',
  conversation_not_found: 'This conversation is not available to you (it may have been taken by someone else).',
  back_to_inbox: 'Inbox', details: 'Details', conversation_actions: 'Conversation actions',
  take: 'Take into work', status: 'Status', assign_to: 'Assign to…', send_to_crm: 'Send to CRM',
  lead_requested: 'Lead requested', lead_not_sent: 'Not sent', current: 'current', no_operators: 'No active operators.',
  assigned_to: 'Assigned to {name}',
  banner_unclaimed: 'Nobody has taken this conversation yet. Take it into work to reply.',
  banner_unclaimed_admin: 'Nobody has taken this conversation yet. Take it into work, or assign it.',
  banner_not_yours: '{name} is handling this conversation.',
  internal_note: 'Internal note', note_not_visible: 'Only operators see notes — never the visitor, never the CRM',
  reply_label: 'Reply to the visitor', note_label: 'Internal note text',
  reply_placeholder: 'Write a reply…', note_placeholder: 'Write an internal note…',
  send: 'Send', add_note: 'Add note', attach_file: 'Attach file', quick_replies: 'Quick replies',
  composer_hint: 'Enter sends · Shift+Enter new line · Ctrl+/ quick replies',
  search_templates: 'Search templates', templates_hint: '↑ ↓ to choose, Enter to insert, Esc to close',
  no_templates: 'No templates match.', send_failed: 'The message was not sent. Try again.',
  note_no_attachment: 'Notes cannot carry files; the file stays for your next reply.',
  wait_upload: 'Wait until the file has uploaded.', upload_failed: 'The file was not uploaded.',
  uploading: 'Uploading {name}', uploading_short: 'Uploading…', attached: 'Ready to send',
  remove_attachment: 'Remove {name}',
  sys_started: 'Conversation started', sys_taken: '{name} took the conversation into work',
  sys_assigned: '{by} assigned the conversation to {name}', sys_status: 'Status: {status}',
  sys_lead: 'Sent to CRM — lead requested', sys_contacts: 'The visitor left contacts: {contacts}',
  sys_contacts_by_operator: 'Contacts corrected: {contacts}', edit_contacts: 'Edit contacts',
  // the conversation's CRM handoff and the returning client's card (conversation.js)
  lead_pending: 'Sent to CRM — creating the lead…', lead_created: 'Lead #{id} created, responsible: {name}',
  lead_failed: 'Lead not created: {reason}', lead_retry: 'Retry', crm_default_responsible: 'the CRM default',
  client_card: 'Client', card_new_client: 'First time here: no earlier conversations.',
  card_matched_visitor: 'same browser', card_matched_phone: 'same phone', card_matched_email: 'same email',
  card_lead: 'Lead #{id}', card_delivery_pending: 'Lead being created', card_delivery_failed: 'Lead not created',
  card_delivery_delivered: 'Lead created', card_in_crm: 'In the CRM', card_no_crm_leads: 'No leads in the CRM for these contacts.',
  card_stale: 'The CRM could not be reached; this may be out of date ({reason}).',
  card_refresh: 'Refresh from the CRM', card_refresh_at: 'Refresh from the CRM (as of {time})',
  contact_name_invalid: 'Check the name (at most 200 characters).',
  contact_phone_invalid: 'Check the phone: 5-15 digits, e.g. +7 900 123-45-67.',
  contact_email_invalid: 'Check the email, e.g. name@example.com.',
  sys_page: 'The visitor opened {url}',
  contact_name: 'Name', contact_phone: 'Phone', contact_email: 'Email', no_contacts: 'No contacts given yet.',
  page: 'Page', custom_params: 'Site parameters', no_params: 'None.', started: 'Started', crm: 'CRM',
  // notifications
  new_conversation: 'New conversation', from_page: 'From {url}',
  assigned_title: 'A conversation was assigned to you', assigned_body: '{by} assigned you a conversation.',
  // settings
  settings_chat: 'Chat & snippet', settings_operators: 'Operators', settings_templates: 'Quick replies',
  settings_widget: 'Widget texts', settings_sites: 'Sites',
  chat_enabled: 'Chat is on', chat_disabled: 'Chat is off', enable_chat: 'Enable chat', disable_chat: 'Disable chat',
  chat_now_enabled: 'Chat enabled.', chat_now_disabled: 'Chat disabled. Nothing stored is lost.',
  chat_toggle_hint: 'When the chat is off, the widget is not offered on your sites.',
  chat_owner_only: 'Only the project owner can turn the chat on or off.',
  snippet_title: 'Snippet', snippet_hint: 'Paste this into every page where the chat should appear.',
  copy: 'Copy', copied: 'Copied.',
  name: 'Name', role: 'Role', state: 'State', actions: 'Actions', role_owner: 'Owner', role_admin: 'Admin',
  role_operator: 'Operator', active: 'Active', inactive: 'Deactivated', edit: 'Edit', edit_named: 'Edit {name}',
  deactivate: 'Deactivate', reactivate: 'Reactivate', remove: 'Remove', remove_named: 'Remove {name}', delete: 'Delete',
  confirm_remove: 'Remove {name}? They lose access at once.', add_operator: 'Add operator',
  display_name: 'Display name', display_name_hint: 'Visitors see this name.', email_login_hint: 'Their login.',
  password_hint: 'At least 10 characters.', new_password: 'New password', new_password_hint: 'Leave empty to keep the current one.',
  current_password: 'Current password', current_password_hint: 'Needed to change your own password.',
  is_admin: 'Admin (sees every conversation, manages settings)', avatar: 'Avatar',
  avatar_hint: 'Square PNG or JPEG, 200×200 to 1500×1500 px.', avatar_preview: 'Preview of the chosen avatar',
  current_avatar: 'Current avatar', no_avatar: 'No avatar', avatar_saved: 'Avatar saved.',
  save: 'Save', saved: 'Saved.', cancel: 'Cancel', add: 'Add', unsaved: 'Not saved yet.',
  operator_added: '{name} was added.', added_avatar_refused: 'The operator was added, but the avatar was refused — choose another image.',
  saved_avatar_refused: 'Saved, but the avatar was refused.',
  add_template: 'Add template', template_title: 'Title', template_text: 'Text', template_added: 'Template added.',
  no_templates_yet: 'No templates yet.', confirm_delete_template: 'Delete the template "{name}"?',
  widget_language: 'Widget language', widget_language_hint: 'Texts you have not changed follow the language.',
  group_header: 'Launcher and header', group_conversation: 'Conversation', group_notices: 'Notices',
  group_contacts: 'Contact form', reset: 'Default', reset_named: 'Reset {name} to default',
  text_hint: 'At most {limit} characters.', preview: 'Preview', preview_label: 'Preview of the widget: {title}',
  sites_hint: 'Origins where the widget may run, e.g. https://example.com (scheme, host and port, no path).',
  site_origin: 'Site origin', no_sites: 'No sites yet.',
  text_launcher_label: 'Launcher button', text_window_title: 'Window title', text_online_subtitle: 'Subtitle (online)',
  text_offline_subtitle: 'Subtitle (offline)', text_close_label: 'Close button', text_greeting: 'Greeting',
  text_input_placeholder: 'Message placeholder', text_send_label: 'Send button', text_attach_label: 'Attach button',
  text_status_sent: 'Status: sent', text_status_delivered: 'Status: delivered', text_typing: 'Typing ({name})',
  text_waiting_for_operator: 'Waiting for an operator', text_operator_joined: 'Operator joined ({name})',
  text_chat_closed: 'Chat closed', text_new_conversation_label: 'New chat button', text_file_too_large: 'File too large',
  text_file_type_not_allowed: 'File type not allowed', text_send_failed_retrying: 'Send failed, retrying',
  text_reconnecting: 'Reconnecting', text_reconnected: 'Reconnected', text_chat_unavailable: 'Chat unavailable',
  text_contact_form_title: 'Contact form title', text_name_label: 'Name label', text_phone_label: 'Phone label',
  text_email_label: 'Email label', text_contact_submit_label: 'Contact form button', text_contact_thanks: 'Thanks message',
  text_privacy_note: 'Privacy note', text_contact_open_label: 'Link that opens the form',
  text_contact_cancel_label: 'Form cancel button', text_contact_invalid_phone: 'Wrong phone',
  text_contact_invalid_email: 'Wrong email',
  // ---- CRM settings and the delivery log (crm.js) ----
  settings_crm: 'CRM', settings_crm_deliveries: 'CRM delivery log',
  crm_intro: 'Where “Send to CRM” creates a lead: the CRM, its address and key, and who gets the lead.',
  crm_connection: 'Connection', crm_kind: 'CRM', crm_kind_hint: 'Only the chosen CRM’s fields are kept.',
  crm_kind_none: 'None', crm_kind_bitrix24: 'Bitrix24', crm_kind_webhook: 'Signed webhook', crm_kind_amocrm: 'amoCRM',
  crm_kind_fields: '{kind}', crm_lead_fields: 'The lead',
  crm_none_hint: 'No CRM: “Send to CRM” requests are recorded and fail with “No CRM is configured”.',
  crm_field_kind: 'CRM', crm_field_webhook_url: 'Incoming webhook URL', crm_field_url: 'Receiver URL',
  crm_field_secret: 'Signing secret', crm_field_base_url: 'amoCRM address', crm_field_token: 'Access token',
  crm_field_default_responsible: 'Default responsible manager (CRM user id)', crm_field_source_name: 'Lead source name',
  crm_hint_webhook_url: 'Bitrix24 → Developer resources → Incoming webhook, with the crm and user scopes; e.g. https://example.bitrix24.ru/rest/1/<key>/.',
  crm_hint_url: 'Parley POSTs each lead here as signed JSON.',
  crm_hint_secret: 'Used to sign every request (8 characters or more).',
  crm_hint_base_url: 'e.g. https://example.amocrm.ru',
  crm_hint_token: 'A long-lived token of an amoCRM integration.',
  crm_hint_default_responsible: 'Gets the lead when no CRM user has the operator’s email. Empty: the CRM decides.',
  crm_hint_source_name: 'Shown in the lead as its source, e.g. “Site chat”.',
  crm_show: 'Show', crm_hide: 'Hide', crm_show_named: 'Show {name}', crm_hide_named: 'Hide {name}',
  crm_stored_url: 'Stored:', crm_leave_empty: 'leave empty to keep it.', crm_stored_keep: 'Stored — leave empty to keep it.', crm_stored_placeholder: 'stored — leave empty to keep',
  crm_not_connected: 'No CRM connected', crm_connected: 'Connected: {kind}', crm_updated: 'changed {when}',
  crm_err_kind: 'Choose a CRM.',
  crm_err_webhook_url: 'Enter the incoming webhook’s base URL (http or https), like https://example.bitrix24.ru/rest/1/<key>/.',
  crm_err_url: 'Enter the receiver’s http(s) URL.', crm_err_secret: 'The secret is 8 to 4000 printable characters.',
  crm_err_base_url: 'Enter your amoCRM address as an http(s) URL.', crm_err_token: 'The token is 8 to 4000 printable characters.',
  crm_err_default_responsible: 'At most 64 characters.', crm_err_source_name: 'At most 100 characters.',
  crm_check_field: 'Not saved: check “{field}”.',
  crm_test: 'Test connection', crm_test_hint: 'Tests the saved settings.', crm_testing: 'Testing…',
  crm_test_ok: 'Connected: {summary}', crm_test_failed: 'The CRM did not answer as expected: {summary}',
  crm_test_unsaved: 'Save the changes first: the test uses the saved settings.',
  crm_open_log: 'Delivery log →', crm_back_to_settings: '← CRM settings', crm_refresh: 'Refresh',
  crm_log_intro: 'Every “Send to CRM”, newest first: its attempts, its outcome and the lead it made.',
  crm_log_updated: '{n} shown · updated {when}', crm_log_empty: 'No leads requested yet.',
  crm_col_status: 'Status', crm_col_attempts: 'Attempts', crm_col_created: 'Requested', crm_col_delivered: 'Delivered',
  crm_col_lead: 'Lead', crm_col_responsible: 'Responsible', crm_col_error: 'Last error', crm_col_conversation: 'Conversation',
  crm_status_pending: 'On its way', crm_status_delivered: 'Delivered', crm_status_failed: 'Failed',
  crm_next_attempt: 'next try', crm_temporary: 'temporary', crm_final: 'final',
  crm_retry: 'Retry', crm_retry_named: 'Retry the delivery requested {when}', crm_retry_queued: 'Queued again.',
  crm_open_conversation: 'Open',
  // ---- end of CRM strings ----
  // durations
  d_s: '{n} s', d_m: '{n} min', d_hm: '{h} h {m} min', d_d: '{n} d',
};

const ru = {
  home: 'Parley — на главную', main_nav: 'Основное меню', inbox: 'Входящие', settings: 'Настройки', language: 'Язык',
  log_out: 'Выйти', skip_to_content: 'К содержимому', live: 'На связи', connecting: 'Подключение…', offline: 'Нет связи',
  reconnecting: 'Связь прервалась — переподключаемся…', reconnected: 'Связь восстановлена — всё актуально',
  session_ended: 'Сеанс завершён. Войдите снова.',
  offline_start: 'Нет связи с сервером. Пробуем ещё раз…', network_error: 'Нет связи с сервером. Попробуйте ещё раз.',
  enable_notifications: 'Включить уведомления на рабочем столе', notifications_enabled: 'Уведомления на рабочем столе включены.',
  notifications_denied: 'Браузер блокирует уведомления для этого сайта; разрешите их в настройках сайта.',
  loading: 'Загрузка…', error: 'Что-то пошло не так', dismiss: 'Закрыть', ok: 'OK', open: 'Открыть',
  login_title: 'Вход в Parley', project: 'Проект', email: 'Эл. почта', password: 'Пароль', log_in: 'Войти',
  inbox_tabs: 'Диалоги', tab_new: 'Новые', tab_mine: 'Мои', tab_all: 'Все',
  count_conversations: 'Диалогов: {n}', empty_new: 'Новых диалогов нет. Новые появятся здесь сразу.',
  empty_mine: 'У вас нет диалогов в работе.', empty_all: 'Диалогов пока нет.',
  visitor: 'Посетитель', unread_n: 'Непрочитанных: {n}', waiting: 'Ждёт ответа', unassigned: 'Не назначен',
  you_prefix: 'Вы:', no_messages: 'Сообщений пока нет',
  status_new: 'Новый', status_in_work: 'В работе', status_closed: 'Закрыт',
  conversation: 'Диалог', pick_conversation: 'Выберите диалог во входящих.',
  conversation_not_found: 'Этот диалог вам недоступен (возможно, его взял другой оператор).',
  back_to_inbox: 'Входящие', details: 'Подробности', conversation_actions: 'Действия с диалогом',
  take: 'Взять в работу', status: 'Статус', assign_to: 'Назначить…', send_to_crm: 'Отправить в CRM',
  lead_requested: 'Заявка отправлена', lead_not_sent: 'Не отправлялся', current: 'сейчас', no_operators: 'Нет активных операторов.',
  assigned_to: 'Назначен: {name}',
  banner_unclaimed: 'Диалог ещё никто не взял. Возьмите его в работу, чтобы ответить.',
  banner_unclaimed_admin: 'Диалог ещё никто не взял. Возьмите его в работу или назначьте оператора.',
  banner_not_yours: 'Диалог ведёт {name}.',
  internal_note: 'Внутренняя заметка', note_not_visible: 'Заметки видят только операторы — не посетитель и не CRM',
  reply_label: 'Ответ посетителю', note_label: 'Текст внутренней заметки',
  reply_placeholder: 'Напишите ответ…', note_placeholder: 'Напишите внутреннюю заметку…',
  send: 'Отправить', add_note: 'Добавить заметку', attach_file: 'Прикрепить файл', quick_replies: 'Быстрые ответы',
  composer_hint: 'Enter — отправить · Shift+Enter — новая строка · Ctrl+/ — быстрые ответы',
  search_templates: 'Поиск шаблонов', templates_hint: '↑ ↓ — выбор, Enter — вставить, Esc — закрыть',
  no_templates: 'Подходящих шаблонов нет.', send_failed: 'Сообщение не отправлено. Попробуйте ещё раз.',
  note_no_attachment: 'К заметке нельзя приложить файл; файл останется для следующего ответа.',
  wait_upload: 'Дождитесь окончания загрузки файла.', upload_failed: 'Файл не загрузился.',
  uploading: 'Загрузка {name}', uploading_short: 'Загрузка…', attached: 'Готов к отправке',
  remove_attachment: 'Убрать {name}',
  sys_started: 'Диалог начат', sys_taken: '{name} взял(а) диалог в работу',
  sys_assigned: '{by} назначил(а) диалог: {name}', sys_status: 'Статус: {status}',
  sys_lead: 'Отправлено в CRM — заявка создаётся', sys_contacts: 'Посетитель оставил контакты: {contacts}',
  sys_contacts_by_operator: 'Контакты исправлены: {contacts}', edit_contacts: 'Изменить контакты',
  // передача в CRM и карточка вернувшегося клиента (conversation.js)
  lead_pending: 'Отправлено в CRM — лид создаётся…', lead_created: 'Лид #{id} создан, ответственный: {name}',
  lead_failed: 'Лид не создан: {reason}', lead_retry: 'Повторить', crm_default_responsible: 'по умолчанию в CRM',
  client_card: 'Клиент', card_new_client: 'Впервые: прежних обращений нет.',
  card_matched_visitor: 'тот же браузер', card_matched_phone: 'тот же телефон', card_matched_email: 'тот же email',
  card_lead: 'Лид #{id}', card_delivery_pending: 'Лид создаётся', card_delivery_failed: 'Лид не создан',
  card_delivery_delivered: 'Лид создан', card_in_crm: 'В CRM', card_no_crm_leads: 'В CRM нет лидов с этими контактами.',
  card_stale: 'CRM недоступна; данные могут быть устаревшими ({reason}).',
  card_refresh: 'Обновить из CRM', card_refresh_at: 'Обновить из CRM (на {time})',
  contact_name_invalid: 'Проверьте имя (не длиннее 200 символов).',
  contact_phone_invalid: 'Проверьте телефон: 5–15 цифр, например +7 900 123-45-67.',
  contact_email_invalid: 'Проверьте почту, например name@example.com.',
  sys_page: 'Посетитель открыл {url}',
  contact_name: 'Имя', contact_phone: 'Телефон', contact_email: 'Эл. почта', no_contacts: 'Контактов пока нет.',
  page: 'Страница', custom_params: 'Параметры сайта', no_params: 'Нет.', started: 'Начат', crm: 'CRM',
  new_conversation: 'Новый диалог', from_page: 'Со страницы {url}',
  assigned_title: 'Вам назначен диалог', assigned_body: '{by} назначил(а) вам диалог.',
  settings_chat: 'Чат и код вставки', settings_operators: 'Операторы', settings_templates: 'Быстрые ответы',
  settings_widget: 'Тексты виджета', settings_sites: 'Сайты',
  chat_enabled: 'Чат включён', chat_disabled: 'Чат выключен', enable_chat: 'Включить чат', disable_chat: 'Выключить чат',
  chat_now_enabled: 'Чат включён.', chat_now_disabled: 'Чат выключен. Сохранённые данные не потеряны.',
  chat_toggle_hint: 'Пока чат выключен, виджет на ваших сайтах не показывается.',
  chat_owner_only: 'Включать и выключать чат может только владелец проекта.',
  snippet_title: 'Код вставки', snippet_hint: 'Вставьте этот код на каждую страницу, где должен быть чат.',
  copy: 'Скопировать', copied: 'Скопировано.',
  name: 'Имя', role: 'Роль', state: 'Состояние', actions: 'Действия', role_owner: 'Владелец', role_admin: 'Администратор',
  role_operator: 'Оператор', active: 'Активен', inactive: 'Отключён', edit: 'Изменить', edit_named: 'Изменить: {name}',
  deactivate: 'Отключить', reactivate: 'Включить', remove: 'Удалить', remove_named: 'Удалить: {name}', delete: 'Удалить',
  confirm_remove: 'Удалить {name}? Доступ пропадёт сразу.', add_operator: 'Добавить оператора',
  display_name: 'Отображаемое имя', display_name_hint: 'Это имя видят посетители.', email_login_hint: 'Логин оператора.',
  password_hint: 'Не меньше 10 символов.', new_password: 'Новый пароль', new_password_hint: 'Оставьте пустым, чтобы не менять.',
  current_password: 'Текущий пароль', current_password_hint: 'Нужен, чтобы сменить свой пароль.',
  is_admin: 'Администратор (видит все диалоги, управляет настройками)', avatar: 'Аватар',
  avatar_hint: 'Квадратный PNG или JPEG, от 200×200 до 1500×1500 px.', avatar_preview: 'Предпросмотр выбранного аватара',
  current_avatar: 'Текущий аватар', no_avatar: 'Нет аватара', avatar_saved: 'Аватар сохранён.',
  save: 'Сохранить', saved: 'Сохранено.', cancel: 'Отмена', add: 'Добавить', unsaved: 'Ещё не сохранено.',
  operator_added: '{name}: оператор добавлен.', added_avatar_refused: 'Оператор добавлен, но аватар не принят — выберите другое изображение.',
  saved_avatar_refused: 'Сохранено, но аватар не принят.',
  add_template: 'Добавить шаблон', template_title: 'Название', template_text: 'Текст', template_added: 'Шаблон добавлен.',
  no_templates_yet: 'Шаблонов пока нет.', confirm_delete_template: 'Удалить шаблон «{name}»?',
  widget_language: 'Язык виджета', widget_language_hint: 'Неизменённые тексты следуют за языком.',
  group_header: 'Кнопка и заголовок', group_conversation: 'Диалог', group_notices: 'Уведомления',
  group_contacts: 'Форма контактов', reset: 'По умолчанию', reset_named: 'Вернуть {name} по умолчанию',
  text_hint: 'Не больше {limit} символов.', preview: 'Предпросмотр', preview_label: 'Предпросмотр виджета: {title}',
  sites_hint: 'Адреса сайтов, где может работать виджет, например https://example.com (схема, хост и порт, без пути).',
  site_origin: 'Адрес сайта', no_sites: 'Сайтов пока нет.',
  text_launcher_label: 'Кнопка запуска', text_window_title: 'Заголовок окна', text_online_subtitle: 'Подзаголовок (в сети)',
  text_offline_subtitle: 'Подзаголовок (не в сети)', text_close_label: 'Кнопка закрытия', text_greeting: 'Приветствие',
  text_input_placeholder: 'Подсказка в поле ввода', text_send_label: 'Кнопка отправки', text_attach_label: 'Кнопка вложения',
  text_status_sent: 'Статус: отправлено', text_status_delivered: 'Статус: доставлено', text_typing: 'Печатает ({name})',
  text_waiting_for_operator: 'Ожидание оператора', text_operator_joined: 'Оператор подключился ({name})',
  text_chat_closed: 'Чат завершён', text_new_conversation_label: 'Кнопка нового чата', text_file_too_large: 'Файл слишком большой',
  text_file_type_not_allowed: 'Тип файла запрещён', text_send_failed_retrying: 'Ошибка отправки, повтор',
  text_reconnecting: 'Переподключение', text_reconnected: 'Связь восстановлена', text_chat_unavailable: 'Чат недоступен',
  text_contact_form_title: 'Заголовок формы', text_name_label: 'Поле «Имя»', text_phone_label: 'Поле «Телефон»',
  text_email_label: 'Поле «Эл. почта»', text_contact_submit_label: 'Кнопка формы', text_contact_thanks: 'Благодарность',
  text_privacy_note: 'Примечание о данных', text_contact_open_label: 'Ссылка на форму',
  text_contact_cancel_label: 'Кнопка отмены', text_contact_invalid_phone: 'Неверный телефон',
  text_contact_invalid_email: 'Неверная почта',
  // ---- CRM settings and the delivery log (crm.js) ----
  settings_crm: 'CRM', settings_crm_deliveries: 'Журнал отправок в CRM',
  crm_intro: 'Куда «Отправить в CRM» передаёт заявку: CRM, её адрес и ключ, кто получает заявку.',
  crm_connection: 'Подключение', crm_kind: 'CRM', crm_kind_hint: 'Сохраняются только поля выбранной CRM.',
  crm_kind_none: 'Нет', crm_kind_bitrix24: 'Битрикс24', crm_kind_webhook: 'Подписанный вебхук', crm_kind_amocrm: 'amoCRM',
  crm_kind_fields: '{kind}', crm_lead_fields: 'Заявка',
  crm_none_hint: 'CRM не подключена: запросы «Отправить в CRM» записываются и завершаются ошибкой «CRM не настроена».',
  crm_field_kind: 'CRM', crm_field_webhook_url: 'Адрес входящего вебхука', crm_field_url: 'Адрес получателя',
  crm_field_secret: 'Секрет подписи', crm_field_base_url: 'Адрес amoCRM', crm_field_token: 'Токен доступа',
  crm_field_default_responsible: 'Ответственный по умолчанию (id пользователя CRM)', crm_field_source_name: 'Источник заявки',
  crm_hint_webhook_url: 'Битрикс24 → Разработчикам → Входящий вебхук с правами crm и user; например https://example.bitrix24.ru/rest/1/<ключ>/.',
  crm_hint_url: 'Parley отправляет сюда каждую заявку POST-запросом с подписанным JSON.',
  crm_hint_secret: 'Им подписывается каждый запрос (не короче 8 символов).',
  crm_hint_base_url: 'например https://example.amocrm.ru',
  crm_hint_token: 'Долгосрочный токен интеграции amoCRM.',
  crm_hint_default_responsible: 'Получает заявку, если в CRM нет пользователя с почтой оператора. Пусто — решает CRM.',
  crm_hint_source_name: 'Показывается в заявке как источник, например «Чат на сайте».',
  crm_show: 'Показать', crm_hide: 'Скрыть', crm_show_named: 'Показать: {name}', crm_hide_named: 'Скрыть: {name}',
  crm_stored_url: 'Сохранён:', crm_leave_empty: 'оставьте пустым, чтобы не менять.', crm_stored_keep: 'Сохранено — оставьте пустым, чтобы не менять.', crm_stored_placeholder: 'сохранено — оставьте пустым, чтобы не менять',
  crm_not_connected: 'CRM не подключена', crm_connected: 'Подключена: {kind}', crm_updated: 'изменено {when}',
  crm_err_kind: 'Выберите CRM.',
  crm_err_webhook_url: 'Укажите базовый адрес входящего вебхука (http или https), например https://example.bitrix24.ru/rest/1/<ключ>/.',
  crm_err_url: 'Укажите http(s)-адрес получателя.', crm_err_secret: 'Секрет — от 8 до 4000 печатных символов.',
  crm_err_base_url: 'Укажите адрес amoCRM в виде http(s)-ссылки.', crm_err_token: 'Токен — от 8 до 4000 печатных символов.',
  crm_err_default_responsible: 'Не больше 64 символов.', crm_err_source_name: 'Не больше 100 символов.',
  crm_check_field: 'Не сохранено: проверьте поле «{field}».',
  crm_test: 'Проверить подключение', crm_test_hint: 'Проверяются сохранённые настройки.', crm_testing: 'Проверяем…',
  crm_test_ok: 'Подключено: {summary}', crm_test_failed: 'CRM ответила не так, как ожидалось: {summary}',
  crm_test_unsaved: 'Сначала сохраните изменения: проверяются сохранённые настройки.',
  crm_open_log: 'Журнал отправок →', crm_back_to_settings: '← Настройки CRM', crm_refresh: 'Обновить',
  crm_log_intro: 'Каждая «Отправка в CRM», новые сверху: попытки, результат и созданная заявка.',
  crm_log_updated: 'Показано: {n} · обновлено {when}', crm_log_empty: 'Заявок пока не было.',
  crm_col_status: 'Статус', crm_col_attempts: 'Попытки', crm_col_created: 'Запрошено', crm_col_delivered: 'Доставлено',
  crm_col_lead: 'Заявка', crm_col_responsible: 'Ответственный', crm_col_error: 'Последняя ошибка', crm_col_conversation: 'Диалог',
  crm_status_pending: 'В пути', crm_status_delivered: 'Доставлено', crm_status_failed: 'Ошибка',
  crm_next_attempt: 'следующая попытка', crm_temporary: 'временная', crm_final: 'окончательная',
  crm_retry: 'Повторить', crm_retry_named: 'Повторить отправку от {when}', crm_retry_queued: 'Поставлено в очередь снова.',
  crm_open_conversation: 'Открыть',
  // ---- end of CRM strings ----
  d_s: '{n} с', d_m: '{n} мин', d_hm: '{h} ч {m} мин', d_d: '{n} дн',
};

const STRINGS = { en, ru };
const KEY = 'parley.lang';

function initialLang() {
  const saved = localStorage.getItem(KEY);
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

let lang = initialLang();

export function getLang() { return lang; }
export function setLang(code) {
  if (!STRINGS[code]) return;
  lang = code;
  localStorage.setItem(KEY, code);
  document.documentElement.lang = code;
}

/** t('key', {name: 'Anna'}) - unknown keys come back as the key itself. */
export function t(key, params) {
  let s = STRINGS[lang][key] ?? en[key] ?? key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export function statusLabel(status) { return t(`status_${status}`); }

export function waitingFor(iso) {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return t('d_s', { n: seconds });
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return t('d_m', { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return t('d_hm', { h: hours, m: minutes % 60 });
  return t('d_d', { n: Math.floor(hours / 24) });
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return new Intl.DateTimeFormat(lang, sameDay ? { hour: '2-digit', minute: '2-digit' }
    : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' }).format(d);
}

export function formatDateTime(iso) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}
