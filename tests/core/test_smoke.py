def test_home_page_says_what_kequip_is(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Kequip" in response.get_data(as_text=True)


def test_demo_bureau_sees_dashboard(login_as):
    response = login_as("bureau").get("/dashboard")
    assert response.status_code == 200
