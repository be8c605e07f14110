"""What the official apps call at connect and login, through mattermostdriver's own endpoint
methods (and its generic ``driver.client`` where 7.3.2's method is unusable: its
``get_list_of_roles_by_name`` sends a GET, Mattermost's route is a POST): old-format client
config and license, roles, preferences with their WebSocket event, and saved posts."""
import json
import secrets

from mattermostdriver.exceptions import NotEnoughPermissions, ResourceNotFound

from test_flows import PASSWORD, Events, driver, eventually, expect_error


def test_apps(servers):
    ports = servers.ports
    port_a, port_b = ports[0], ports[1 % len(ports)]
    tag = secrets.token_hex(3)

    # The connect screen, before any login.
    anon = driver(port_b)
    config = anon.system.get_client_configuration({'format': 'old'})
    license_ = anon.system.get_client_license({'format': 'old'})
    assert config['DiagnosticId']
    assert config['Version'] == '10.11.0'
    assert config['EnableSignInWithUsername'] == 'true'
    assert all(isinstance(v, str) for v in config.values())
    assert license_ == {'IsLicensed': 'false'}

    users, drivers = {}, {}
    for name, port in [('admin', port_a), ('bob', port_b)]:
        d = driver(port, f'{name}{tag}')
        eventually(f'sign up {name}', lambda: d.users.create_user(
            {'email': f'{name}-{tag}@example.com', 'username': f'{name}{tag}', 'password': PASSWORD}))
        eventually(f'log in {name}', d.login)
        users[name], drivers[name] = d.users.get_user('me'), d
    admin, bob = drivers['admin'], drivers['bob']
    bob_id = users['bob']['id']

    # Roles.
    roles = bob.client.post('/roles/names', options=['system_user', 'team_user', 'channel_user', 'no_such_role'])
    assert sorted(r['name'] for r in roles) == ['channel_user', 'system_user', 'team_user']
    channel_user = next(r for r in roles if r['name'] == 'channel_user')
    assert 'create_post' in channel_user['permissions']
    assert bob.roles.get_role_by_name('team_user')['id'] == next(r for r in roles if r['name'] == 'team_user')['id']
    assert bob.roles.get_role_by_id(channel_user['id'])['name'] == 'channel_user'
    expect_error(ResourceNotFound, 404, 'app.role.get_by_name.app_error',
                 lambda: bob.roles.get_role_by_name('nobody_has_this'))

    # Preferences, with bob's socket listening.
    bob_ws = Events(bob)
    try:
        bob_ws.wait('hello', lambda m: m.get('event') == 'hello')
        prefs = [
            {'user_id': bob_id, 'category': 'display_settings', 'name': 'use_military_time', 'value': 'true'},
            {'user_id': bob_id, 'category': 'display_settings', 'name': 'name_format', 'value': 'username'},
        ]
        assert bob.preferences.save_user_preferences(bob_id, options=prefs) == {'status': 'OK'}
        changed = bob_ws.wait('preferences_changed', lambda m: m.get('event') == 'preferences_changed')
        assert len(json.loads(changed['data']['preferences'])) == 2
        by_category = bob.preferences.list_user_preferences_by_category(bob_id, 'display_settings')
        assert sorted(p['name'] for p in by_category) == ['name_format', 'use_military_time']
        one = bob.preferences.get_specific_user_preference(bob_id, 'display_settings', 'name_format')
        assert one == prefs[1]
        bob.preferences.delete_user_preferences(bob_id, options=[prefs[0]])
        deleted = bob_ws.wait('preferences_deleted', lambda m: m.get('event') == 'preferences_deleted')
        assert json.loads(deleted['data']['preferences'])[0]['name'] == 'use_military_time'
        left = bob.preferences.get_user_preferences(bob_id)
        assert [p for p in left if p['category'] == 'display_settings'] == [prefs[1]]
    finally:
        bob_ws.close()

    # Not bob's to read.
    expect_error(NotEnoughPermissions, 403, 'api.context.permissions.app_error',
                 lambda: bob.preferences.get_user_preferences(users['admin']['id']))

    # Saved posts.
    team = admin.teams.create_team({'name': f'apps-{tag}', 'display_name': 'Apps', 'type': 'O'})
    admin.teams.add_user_to_team(team['id'], {'team_id': team['id'], 'user_id': bob_id})
    town = admin.channels.get_channel_by_name(team['id'], 'town-square')
    post = admin.posts.create_post({'channel_id': town['id'], 'message': f'save me {tag}'})
    eventually('bob sees the post', lambda: bob.posts.get_post(post['id']))
    bob.preferences.save_user_preferences(bob_id, options=[
        {'user_id': bob_id, 'category': 'flagged_post', 'name': post['id'], 'value': 'true'}])
    flagged = bob.posts.get_list_of_flagged_posts(bob_id)
    assert flagged['order'] == [post['id']]
    assert flagged['posts'][post['id']]['message'] == f'save me {tag}'
